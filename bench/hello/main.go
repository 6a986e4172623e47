// Command hello is the floor for plana's start-up time: the smallest Go
// program, built with the same flags as plana.
package main

import "os"

func main() { os.Stdout.WriteString("hello\n") }
