// Package arch holds the architecture test: it reads the package table of
// docs/DESIGN.md and checks the module's import graph (go list -deps
// -json) against it. It has no code of its own.
package arch
