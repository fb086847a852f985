// The OCI runtime-tools v0.9.0 validation suite, built by run.sh. A module of
// its own so that the main go.mod is untouched: runtime-tools v0.9.0 predates
// Go modules, and its dependencies are pinned here to versions of its era
// (runtime-spec v1.0.2, selinux v1.3.0, satori/go.uuid v1.1.0, urfave/cli
// v1.19.1, ...). tools.go keeps them required.
module github.com/berthrt/berth/integration/conformance

go 1.26.0

require (
	github.com/opencontainers/runtime-tools v0.9.0
	golang.org/x/sys v0.0.0-20191115151921-52ab43148777
)

require (
	github.com/blang/semver v3.5.0+incompatible // indirect
	github.com/hashicorp/errwrap v1.0.0 // indirect
	github.com/hashicorp/go-multierror v1.0.0 // indirect
	github.com/konsorten/go-windows-terminal-sequences v1.0.1 // indirect
	github.com/mndrix/tap-go v0.0.0-20171203230836-629fa407e90b // indirect
	github.com/mrunalp/fileutils v0.0.0-20171103030105-7d4729fb3618 // indirect
	github.com/opencontainers/runtime-spec v1.0.2 // indirect
	github.com/opencontainers/selinux v1.3.0 // indirect
	github.com/satori/go.uuid v1.1.0 // indirect
	github.com/sirupsen/logrus v1.4.2 // indirect
	github.com/syndtr/gocapability v0.0.0-20180916011248-d98352740cb2 // indirect
	github.com/urfave/cli v1.19.1 // indirect
	github.com/xeipuuv/gojsonpointer v0.0.0-20180127040702-4e3ac2762d5f // indirect
	github.com/xeipuuv/gojsonreference v0.0.0-20180127040603-bd5ef7bd5415 // indirect
	github.com/xeipuuv/gojsonschema v1.2.0 // indirect
	gopkg.in/yaml.v2 v2.4.0 // indirect
)
