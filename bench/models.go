package bench

import (
	"path/filepath"
	"strings"

	"github.com/pioneer-ai/pioneer/data"
)

// ModelTag is how figure and result names end for a base model: nano for pioneer-nano,
// smollm2 for SmolLM2-135M-Instruct, otherwise the folder's or file's base name with
// dashes and dots made underscores.
func ModelTag(name string) string {
	switch name {
	case data.NanoModel:
		return "nano"
	case data.SmolLM2:
		return "smollm2"
	}
	return strings.NewReplacer("-", "_", ".", "_").Replace(strings.TrimSuffix(filepath.Base(name), ".gguf"))
}

// ResultSuffix is how a result file's name ends for a base model: nothing for
// pioneer-nano (the first results' names), _TAG otherwise.
func ResultSuffix(model string) string {
	if model == data.NanoModel {
		return ""
	}
	return "_" + ModelTag(model)
}
