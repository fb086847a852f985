package main

// version is set at build time by the Makefile (-X main.version=...).
var version = "dev"
