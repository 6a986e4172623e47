// Command plana rotates BOS API keys without downtime.
package main

import (
	"os"

	"github.com/plana-cli/plana/cmd/root"
)

func main() { os.Exit(root.Main()) }
