package keys

import (
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/config"
	"github.com/plana-cli/plana/internal/textsafe"
	"github.com/plana-cli/plana/rotate"
)

// Person is a user as key output shows them.
type Person struct {
	ID    string `json:"id" yaml:"id"`
	Email string `json:"email" yaml:"email"`
	// Role is the user's role now (admin or member): a key's claim to
	// replace another is believed only together with its issuer's role.
	Role string `json:"role,omitempty" yaml:"role,omitempty"`
}

// KeyRecord is a key as `keys list` and `keys show` print it with -o
// json|yaml|csv: the API's fields plus the rotation schedule. Its field
// names are a contract with scripts; it never holds a plaintext.
type KeyRecord struct {
	ID              string     `json:"id" yaml:"id"`
	Name            string     `json:"name" yaml:"name"`
	Description     string     `json:"description,omitempty" yaml:"description,omitempty"`
	Prefix          string     `json:"prefix" yaml:"prefix"`
	Scopes          []string   `json:"scopes" yaml:"scopes"`
	Status          string     `json:"status" yaml:"status"`
	CreatedAt       time.Time  `json:"created_at" yaml:"created_at"`
	CreatedBy       Person     `json:"created_by" yaml:"created_by"`
	LastUsedAt      *time.Time `json:"last_used_at" yaml:"last_used_at"`
	RevokedAt       *time.Time `json:"revoked_at" yaml:"revoked_at"`
	RevokedBy       *Person    `json:"revoked_by" yaml:"revoked_by"`
	RotationCadence string     `json:"rotation_cadence" yaml:"rotation_cadence"`
	RotationDueAt   *time.Time `json:"rotation_due_at" yaml:"rotation_due_at"`
	RotationDue     bool       `json:"rotation_due" yaml:"rotation_due"`
}

// newKeyRecord is k as p (rotation.PolicyOf) schedules its rotation.
func newKeyRecord(k client.APIKey, p rotate.Policy, now time.Time) KeyRecord {
	cadence := p.Resolve(k.Name, rotate.Settings{}).Cadence
	r := KeyRecord{
		ID: k.ID, Name: k.Name, Description: k.Description, Prefix: k.Prefix, Scopes: k.Scopes,
		Status: k.Status, CreatedAt: k.CreatedAt, CreatedBy: Person{k.CreatedBy.ID, k.CreatedBy.Email, k.CreatedBy.Role},
		LastUsedAt: k.LastUsedAt, RevokedAt: k.RevokedAt, RotationCadence: config.FormatDuration(cadence),
	}
	if r.Scopes == nil {
		r.Scopes = []string{}
	}
	if k.RevokedBy != nil {
		r.RevokedBy = &Person{k.RevokedBy.ID, k.RevokedBy.Email, k.RevokedBy.Role}
	}
	if k.Active() {
		due := k.CreatedAt.Add(cadence)
		r.RotationDueAt = &due
		r.RotationDue = !now.Before(due)
	}
	return r
}

// clean is r with what others chose (names, emails, scopes) made safe for
// a terminal: escape sequences in them are shown, not obeyed. Ids, prefixes
// and statuses are the server's too, and a server may be anything. The
// JSON, YAML and CSV outputs keep the values as they are.
func (r KeyRecord) clean() KeyRecord {
	r.Name, r.Description, r.CreatedBy.Email, r.CreatedBy.Role = textsafe.Clean(r.Name), textsafe.Clean(r.Description), textsafe.Clean(r.CreatedBy.Email), textsafe.Clean(r.CreatedBy.Role)
	r.ID, r.Prefix, r.Status = textsafe.Clean(r.ID), textsafe.Clean(r.Prefix), textsafe.Clean(r.Status)
	if r.RevokedBy != nil {
		r.RevokedBy = &Person{r.RevokedBy.ID, textsafe.Clean(r.RevokedBy.Email), textsafe.Clean(r.RevokedBy.Role)}
	}
	r.Scopes = cleanAll(r.Scopes)
	return r
}

func cleanAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = textsafe.Clean(s)
	}
	return out
}

// serverNow is the server's clock when an answer has told it, so ages and
// due dates agree with BOS and not with a skewed laptop.
func serverNow(c *client.Client, local func() time.Time) time.Time {
	if t, ok := c.ServerNow(); ok {
		return t
	}
	return local()
}
