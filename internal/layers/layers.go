// Package layers holds the test that keeps Pioneer's packages in the floors
// docs/DESIGN.md draws: a package imports only packages of lower floors. A new package is
// placed in the table of layers_test.go (and in docs/DESIGN.md) or the test fails.
package layers
