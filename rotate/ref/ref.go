// Package ref names keys and people without anything secret: the values
// that a rotation's journal, its log, its gate and a fleet's summary all
// carry. It is a leaf: it imports nothing of plana's but the client's key.
package ref

import "github.com/plana-cli/plana/client"

// Key names a key without anything secret.
type Key struct {
	ID     string   `json:"id"`
	Prefix string   `json:"prefix"`
	Name   string   `json:"name"`
	Scopes []string `json:"scopes,omitempty"`
}

// Of describes k.
func Of(k client.APIKey) Key {
	return Key{ID: k.ID, Prefix: k.Prefix, Name: k.Name, Scopes: k.Scopes}
}

// Actor is who did it: the BOS user behind the management key and the local
// account.
type Actor struct {
	Email string `json:"email,omitempty"`
	Local string `json:"local,omitempty"` // user@host
}

func (a Actor) String() string {
	switch {
	case a.Email != "" && a.Local != "":
		return a.Email + " (" + a.Local + ")"
	case a.Email != "":
		return a.Email
	}
	return a.Local
}
