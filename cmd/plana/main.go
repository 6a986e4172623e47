// Command plana rotates BOS API keys without downtime.
package main

import (
	"os"

	"github.com/plana-cli/plana/cmd/root"
	"github.com/plana-cli/plana/internal/startgc"
)

func main() {
	startgc.Restore()
	os.Exit(root.Main())
}
