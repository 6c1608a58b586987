package main

import (
	"io"
)

// writeContactSheet draws the results as a PNG or HTML contact sheet.
func writeContactSheet(w io.Writer, kind string, r *searchResult) error {
	return nil
}
