package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/pioneer-ai/pioneer/agent/catalog"
	"github.com/pioneer-ai/pioneer/agent/coldstart"
)

func main() {
	c, err := catalog.Open(os.Args[1])
	if err != nil {
		panic(err)
	}
	if err := c.AddBundled(); err != nil {
		panic(err)
	}
	for _, q := range os.Args[2:] {
		p, err := coldstart.PlanTask(q, nil, c)
		if err != nil {
			fmt.Println("ERR", err)
			continue
		}
		b, _ := json.MarshalIndent(p, "", " ")
		fmt.Println(string(b))
	}
}
