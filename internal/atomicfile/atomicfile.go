// Package atomicfile replaces a file's contents all at once: a reader, or
// the next run after a crash, sees the old file or the new one, never half
// of either. Journals, the config, env files and calendars go through it.
package atomicfile

import "io/fs"

// WriteFile replaces path with data at exactly perm, whatever the umask and
// whatever the mode of the file it replaces: an env file that held a key
// readable by others must not stay that way.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	return writeFile(path, data, perm)
}
