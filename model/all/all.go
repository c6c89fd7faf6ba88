// Package all registers every architecture Pioneer supports with package model.
package all

import (
	_ "github.com/pioneer-ai/pioneer/model/gpt2"  // GPT-2
	_ "github.com/pioneer-ai/pioneer/model/llama" // Llama, Qwen2, Qwen3, Mistral
)
