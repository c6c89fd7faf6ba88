module github.com/pioneer-ai/pioneer

go 1.26
