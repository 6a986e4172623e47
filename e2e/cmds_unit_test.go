package e2e

import (
	"context"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/secret"
)

// unitCommands reach behind plana's back, as a user or another tool might.
var unitCommands = scriptCommands{
	"keyringdel": cmdKeyringDel,
	"leftovers":  cmdLeftovers,
}

// cmdKeyringDel: keyringdel PREFIX deletes the keyring entry holding the
// plaintext of the key with that prefix, as a user or another tool might,
// behind plana's back.
func cmdKeyringDel(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: keyringdel PREFIX")
	}
	keys, err := adminClient(ts).ListKeys(context.Background(), client.ListKeysOptions{Status: client.StatusAll})
	ts.Check(err)
	for _, k := range keys {
		if k.Prefix == args[0] {
			ts.Check(secret.NewKeyring(10 * time.Second).Delete(secret.KeyName(k.ID)))
			return
		}
	}
	ts.Fatalf("no key with prefix %s", args[0])
}
