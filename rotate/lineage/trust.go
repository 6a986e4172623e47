package lineage

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/rotate/ref"
)

// RoleAdmin is the role of a user who manages every key of the workspace.
const RoleAdmin = "admin"

// Anyone who may create keys can write any description, so a claim is
// believed only when the key that makes it could have been made by the
// rotation it describes: the same scopes as the key it replaces, created by
// someone entitled to replace that key (its issuer, the user plana runs as,
// or an admin), and that person is the one the claim names. A key made by
// hand, with no lineage in its description, is linked by its name only on
// the same terms (the name is its claim). Anything else that claims a
// lineage is a Claimant: shown, and otherwise ignored, so a member who
// forges a successor of an admin's key cannot get it carried on, deployed,
// or the admin's key revoked in its favour.

// Claimant is a key that claims to replace another and is not believed.
type Claimant struct {
	Key client.APIKey
	// Old is the key it claims to replace: the whole key when the
	// workspace has it, else only the prefix and name its claim gives.
	Old ref.Key
	// Claim is what its description claims; nil for a key linked only by
	// its name (made by hand).
	Claim *Claim
	// Doubts are the reasons it is not believed, each a clause.
	Doubts []string
}

// Why is every reason the claim is not believed, in one sentence.
func (c Claimant) Why() string { return strings.Join(c.Doubts, "; ") }

// claimantRecord is a Claimant as every output writes it (keys show, keys
// status, a rotation's -o json): a contract with scripts.
type claimantRecord struct {
	ID                string      `json:"id" yaml:"id"`
	Name              string      `json:"name" yaml:"name"`
	Prefix            string      `json:"prefix" yaml:"prefix"`
	Scopes            []string    `json:"scopes" yaml:"scopes"`
	Status            string      `json:"status" yaml:"status"`
	CreatedAt         time.Time   `json:"created_at" yaml:"created_at"`
	CreatedBy         client.User `json:"created_by" yaml:"created_by"`
	ClaimsToReplace   ref.Key     `json:"claims_to_replace" yaml:"claims_to_replace"`
	Claim             *Claim      `json:"claim,omitempty" yaml:"claim,omitempty"`
	NotTrustedBecause []string    `json:"not_trusted_because" yaml:"not_trusted_because"`
}

func (c Claimant) record() claimantRecord {
	k := c.Key
	return claimantRecord{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Scopes: k.Scopes, Status: k.Status, CreatedAt: k.CreatedAt,
		CreatedBy: k.CreatedBy, ClaimsToReplace: c.Old, Claim: c.Claim, NotTrustedBecause: c.Doubts}
}

// MarshalJSON writes c as its record.
func (c Claimant) MarshalJSON() ([]byte, error) { return json.Marshal(c.record()) }

// MarshalYAML writes c as its record.
func (c Claimant) MarshalYAML() (any, error) { return c.record(), nil }

// verdict is what a key's claim to replace another comes to.
type verdict int

const (
	noClaim  verdict = iota // it does not claim to replace the other key
	believed                // a successor
	doubted                 // a claimant
)

// judge decides whether k's claim to replace old is believed by caller,
// the user plana runs as (zero when unknown: then only the issuer and
// admins vouch for a successor). It returns the doubts of a claimant.
func judge(old, k client.APIKey, caller client.User) (verdict, *Claim, []string) {
	if k.ID == old.ID {
		return noClaim, nil, nil
	}
	if l, ok := Parse(k.Description); ok {
		if l.OldPrefix != old.Prefix {
			return noClaim, nil, nil
		}
		d := doubts(old, k, caller)
		if !strings.EqualFold(l.By, k.CreatedBy.Email) {
			d = append(d, fmt.Sprintf("its description names %s, but %s created it", l.By, k.CreatedBy.Email))
		}
		if len(d) > 0 {
			return doubted, &l, d
		}
		return believed, &l, nil
	}
	// Made by hand: the year-suffix name, made after old, with old's scopes.
	// A key of other scopes is another key that happens to share the name,
	// not a claim.
	if !k.CreatedAt.After(old.CreatedAt) || !IsSuccessorName(old.Name, k.Name) || !sameScopes(old.Scopes, k.Scopes) {
		return noClaim, nil, nil
	}
	if d := doubts(old, k, caller); len(d) > 0 {
		return doubted, nil, append(d, "it is named like a successor, with no lineage in its description")
	}
	return believed, nil, nil
}

// doubts are the rule's first two conditions: the same scopes, and a
// creator entitled to replace old.
func doubts(old, k client.APIKey, caller client.User) []string {
	var d []string
	if !sameScopes(old.Scopes, k.Scopes) {
		d = append(d, fmt.Sprintf("its scopes (%s) are not the old key's (%s)", scopeList(k.Scopes), scopeList(old.Scopes)))
	}
	by := k.CreatedBy
	if !sameUser(by, old.CreatedBy) && !sameUser(by, caller) && by.Role != RoleAdmin {
		role := by.Role
		if role == "" {
			role = "no known role"
		}
		not := []string{"the old key's issuer (" + old.CreatedBy.Email + ")"}
		if caller.ID != "" && !sameUser(caller, old.CreatedBy) {
			not = append(not, "the user plana runs as ("+caller.Email+")")
		}
		d = append(d, fmt.Sprintf("it was created by %s (%s), who is not %s, nor an admin", by.Email, role, strings.Join(not, ", nor ")))
	}
	return d
}

// sameUser compares users by id: an email can be reused or changed, and two
// users the server did not identify are not the same user.
func sameUser(a, b client.User) bool { return a.ID != "" && a.ID == b.ID }

func scopeList(s []string) string {
	s = slices.Clone(s)
	slices.Sort(s)
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func sameScopes(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
