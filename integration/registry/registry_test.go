package registry

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestStart starts an open and an authenticated registry: the first
// answers /v2/ and an empty catalog, the second refuses without
// credentials and answers with them.
func TestStart(t *testing.T) {
	open := Start(t, Options{})
	resp, err := http.Get(open.URL + "/v2/_catalog")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"repositories":[]`) {
		t.Fatalf("catalog of a new registry: %s %s", resp.Status, body)
	}
	if !strings.HasPrefix(open.Host, "127.0.0.1:") {
		t.Fatalf("registry host %q, want one on 127.0.0.1", open.Host)
	}

	locked := Start(t, Options{Users: map[string]string{"berth": "s3cret"}})
	resp, err = http.Get(locked.URL + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/v2/ without credentials: %s, want 401", resp.Status)
	}
	req, _ := http.NewRequest(http.MethodGet, locked.URL+"/v2/", nil)
	req.SetBasicAuth("berth", "s3cret")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/v2/ with credentials: %s, want 200", resp.Status)
	}
}
