//go:build !((dragonfly && cgo) || (freebsd && cgo) || linux || netbsd || openbsd)

package secret

// needSessionBus: the keychains of macOS and Windows need no session bus.
func needSessionBus() error { return nil }
