// Package data holds the data Pioneer embeds in its binary, so its default jobs run on a
// fresh machine with nothing else downloaded. SOURCES.md lists origins and licences.
package data

import "embed"

// TinyShakespeare is the default pretraining corpus (UTF-8 text).
//
//go:embed corpus/tinyshakespeare.txt
var TinyShakespeare []byte

// Tasks holds the bundled tasks, tasks/<name>/task.yaml with their data splits (see
// agent/task and tasks/SOURCES.md).
//
//go:embed tasks
var Tasks embed.FS

// Models holds pioneer-nano, Pioneer's own small base model, as a Hugging Face folder:
// models/pioneer-nano/{config.json, model.safetensors, tokenizer.json, ...}.
//
//go:embed models
var Models embed.FS
