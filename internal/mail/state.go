package mail

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/netsentinel/netsentinel/internal/report"
)

// StateFileName is the name of the state file in an output directory.
const StateFileName = "state.json"

// State is what the report command remembers across restarts: the
// deliveries the outbox made and the last window its scheduler produced.
type State struct {
	// LastEnd is the end of the last window whose report was produced.
	LastEnd time.Time `json:"last_end,omitzero"`
	// Sent lists the latest deliveries, newest last.
	Sent []Delivery `json:"sent,omitempty"`
}

// Delivery records one report sent.
type Delivery struct {
	ID string    `json:"id"`
	At time.Time `json:"at"`
}

// maxSent is how many deliveries State keeps.
const maxSent = 200

// wasSent reports whether the report id was delivered.
func (s *State) wasSent(id string) bool {
	for _, d := range s.Sent {
		if d.ID == id {
			return true
		}
	}
	return false
}

// StateFile is a State stored as JSON in a file. Updates are serialised
// and each is written to a temporary file and renamed, so a crash leaves
// either the old or the new state.
type StateFile struct {
	path string
	mu   sync.Mutex
}

// NewStateFile returns the state stored at path; the file need not exist.
func NewStateFile(path string) *StateFile { return &StateFile{path: path} }

// Load reads the state; a missing file is the zero State.
func (f *StateFile) Load() (State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.load()
}

func (f *StateFile) load() (State, error) {
	var s State
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("read state: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("read state %s: %w", f.path, err)
	}
	return s, nil
}

// Update loads the state, applies fn and saves the result unless fn
// returns an error.
func (f *StateFile) Update(fn func(*State) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.load()
	if err != nil {
		return err
	}
	if err := fn(&s); err != nil {
		return err
	}
	if len(s.Sent) > maxSent {
		s.Sent = s.Sent[len(s.Sent)-maxSent:]
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return report.WriteFile(f.path, append(b, '\n'))
}
