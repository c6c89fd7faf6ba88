// Package data holds the data Pioneer embeds in its binary, so its default jobs run on a
// fresh machine with nothing else downloaded. SOURCES.md lists origins and licences.
package data

import _ "embed"

// TinyShakespeare is the default pretraining corpus (UTF-8 text).
//
//go:embed corpus/tinyshakespeare.txt
var TinyShakespeare []byte
