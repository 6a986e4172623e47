// Package notify hands rotation events to hooks (`--notify exec:CMD`): one
// JSON line per event on the hook's stdin. An event is built only from typed
// fields, and every piece of text in it is redacted when it is written, so key
// material cannot reach a hook whatever a caller puts in a name or an error.
package notify

import (
	"encoding/json"
	"time"

	"github.com/plana-cli/plana/client"
)

// Kind is what happened.
type Kind string

// The events of a rotation, in the order a rotation meets them.
const (
	Started            Kind = "started"
	Created            Kind = "created"
	Deployed           Kind = "deployed"
	Waiting            Kind = "waiting"
	Verified           Kind = "verified"
	Finalized          Kind = "finalized"
	Revoked            Kind = "revoked"
	RefusedAfterRevoke Kind = "refused-after-revoke"
	Failed             Kind = "failed"
	// Interrupted: the run was stopped (Ctrl-C) before it got where it
	// was going; its journal holds how far it got, and the next run
	// resumes there.
	Interrupted Kind = "interrupted"
	Aborted     Kind = "aborted"
)

// Suspicious is one finding of `plana keys audit`: calls the key's owners
// did not make.
const Suspicious Kind = "suspicious"

// Kinds lists every kind, for documentation and tests.
var Kinds = []Kind{Started, Created, Deployed, Waiting, Verified, Finalized, Revoked, RefusedAfterRevoke, Failed, Interrupted, Aborted, Suspicious}

// Step is the step of the procedure an event belongs to.
type Step string

// Steps of the procedure.
const (
	StepCreate   Step = "create"
	StepDeploy   Step = "deploy"
	StepVerify   Step = "verify"
	StepFinalize Step = "finalize"
	StepRevoke   Step = "revoke"
	StepAbort    Step = "abort"
	// StepAudit is keys audit's, outside any rotation.
	StepAudit Step = "audit"
)

// Text is any text that comes from outside plana's own code (a key's name,
// a user agent, an error message). It is redacted when marshalled: whatever
// it holds, nothing shaped like a key leaves as more than its prefix.
type Text string

// MarshalJSON writes t with key-shaped substrings cut to their prefix.
func (t Text) MarshalJSON() ([]byte, error) { return json.Marshal(client.Redact(string(t))) }

// Key names a key by what is public about it.
type Key struct {
	ID     Text `json:"id"`
	Name   Text `json:"name"`
	Prefix Text `json:"prefix"`
}

// KeyOf is the public part of k.
func KeyOf(k client.APIKey) Key {
	return Key{ID: Text(k.ID), Name: Text(k.Name), Prefix: Text(k.Prefix)}
}

// Source is a place a key is called from, in the shape of the gate's
// sources in -o json (gate.sources[]: source_ip, user_agent, path, calls,
// last_seen): one schema wherever plana tells of one. Path is "" where a
// source is counted over every path (one a migration waits on); the calls
// of a suspicious event also carry their method and first_seen.
type Source struct {
	SourceIP  Text      `json:"source_ip"`
	UserAgent Text      `json:"user_agent"`
	Method    Text      `json:"method,omitempty"`
	Path      Text      `json:"path"`
	Calls     int       `json:"calls"`
	FirstSeen time.Time `json:"first_seen,omitzero"`
	LastSeen  time.Time `json:"last_seen"`
}

// Event is one line a hook receives.
type Event struct {
	Kind Kind `json:"event"`
	Step Step `json:"step"`
	// Key is the key being rotated (the old one); New its successor once
	// it exists.
	Key Key  `json:"key"`
	New *Key `json:"new_key,omitempty"`
	// Time is the server's time (its Date header), not the local clock.
	Time  time.Time `json:"server_time"`
	Actor Text      `json:"actor"`
	// Target is the deploy target an event of step 2 or 4 is about.
	Target Text `json:"target,omitempty"`
	// Sources are what a waiting rotation waits on, where a revoked key is
	// still refused from, or a suspicious finding's calls.
	Sources []Source `json:"sources,omitempty"`
	// Finding is a suspicious event's kind of finding (new-source, burst,
	// ...), with why it is unusual in Reason.
	Finding Text `json:"finding,omitempty"`
	Reason  Text `json:"reason,omitempty"`
	Error   Text `json:"error,omitempty"`
}
