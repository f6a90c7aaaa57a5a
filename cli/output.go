package cli

import (
	"encoding/json"
	"io"

	"github.com/spf13/cobra"
)

// output is a command's --output: text for a person (what text says it is),
// or json for a program.
type output string

func (o *output) flag(cmd *cobra.Command, text string) {
	cmd.Flags().StringVarP((*string)(o), "output", "o", "text", text+" or json")
}

// check refuses anything but text and json, before any work is done.
func (o output) check() error {
	if o != "text" && o != "json" {
		return usageErr("--output %q: want text or json", string(o))
	}
	return nil
}

// write writes v as indented JSON, or calls text.
func (o output) write(w io.Writer, v any, text func()) error {
	if o == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text()
	return nil
}
