package cmdutil

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/config"
	"github.com/plana-cli/plana/internal/iostreams"
	"github.com/plana-cli/plana/internal/secret"
)

// FactoryOptions are what New needs from the process (or from a test).
type FactoryOptions struct {
	IOStreams *iostreams.IOStreams
	Version   string
	// Flags returns the root's persistent flags once parsed (--profile,
	// --api-url); nil when there are none.
	Flags   func() *pflag.FlagSet
	Secrets func() (secret.Store, error)
	// Getenv defaults to os.Getenv.
	Getenv     func(string) string
	Now        func() time.Time
	Executable string
	// ClientOptions are appended to every client's options (tests shorten
	// retries with them).
	ClientOptions []client.Option
}

// UserAgent is what plana's requests say they are: "plana/VERSION (OS;
// MACHINE)", so the execution log shows which machine used which management
// key. machine is config's MachineName, which holds nothing that could end
// the comment or the header.
func UserAgent(version, machine string) string {
	return fmt.Sprintf("plana/%s (%s; %s)", version, runtime.GOOS, machine)
}

// New builds a Factory whose parts are made on first use and then reused.
// Built on the process's own environment (no Getenv given), it takes
// PLANA_TOKEN out of it (see processEnv).
func New(o FactoryOptions) *Factory {
	if o.Getenv == nil {
		o.Getenv = processEnv()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	f := &Factory{IOStreams: o.IOStreams, Version: o.Version, Executable: o.Executable, Now: o.Now, Getenv: o.Getenv}
	f.Config = sync.OnceValues(func() (*config.Config, error) {
		var fs *pflag.FlagSet
		if o.Flags != nil {
			fs = o.Flags()
		}
		return config.Load(config.Options{Flags: fs, Getenv: o.Getenv})
	})
	f.StateDir = func() (string, error) { return config.StateDirFrom(o.Getenv) }
	f.MachineName = func() (string, error) {
		cfg, err := f.Config()
		if err != nil {
			return "", err
		}
		return cfg.MachineName(), nil
	}
	f.Secrets = sync.OnceValues(o.Secrets)
	f.Token = func() (Token, error) {
		cfg, err := f.Config()
		if err != nil {
			return Token{}, err
		}
		tok, err := ResolveToken(cfg.Profile(), o.Getenv, f.Secrets)
		if err != nil || tok.Source != TokenFromKeyring {
			return tok, err
		}
		store, err := f.Secrets()
		if err != nil {
			return Token{}, err
		}
		if err := CheckTokenOrigin(tok, cfg, store, o.IOStreams.ErrOut); err != nil {
			return Token{}, err
		}
		return tok, nil
	}
	f.ClientFor = func(keys ...string) (*client.Client, error) {
		cfg, err := f.Config()
		if err != nil {
			return nil, err
		}
		opts := append([]client.Option{
			client.WithKeys(keys...),
			client.WithUserAgent(UserAgent(o.Version, cfg.MachineName())),
		}, o.ClientOptions...)
		return client.New(cfg.APIURL(), opts...)
	}
	f.Client = func() (*client.Client, error) {
		tok, err := f.Token()
		if err != nil {
			return nil, err
		}
		return f.ClientFor(tok.Value())
	}
	return f
}

// processEnv is this process's environment for the Factory, with
// PLANA_TOKEN read once and then unset: every process plana starts
// inherits its environment, including those it does not start itself (the
// AWS SDK's credential_process, a Kubernetes exec credential plugin, a
// sops key service), and none has any business with the management key.
// The Factory alone goes on seeing it.
func processEnv() func(string) string {
	token := os.Getenv("PLANA_TOKEN")
	os.Unsetenv("PLANA_TOKEN")
	return func(k string) string {
		if k == "PLANA_TOKEN" {
			return token
		}
		return os.Getenv(k)
	}
}
