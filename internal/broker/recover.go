package broker

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// runningFile exists in the data directory while a broker runs on it; a
// start that finds it knows the last run did not stop cleanly.
const runningFile = "RUNNING"

// ErrDataDir is wrapped by the error Start returns when the data directory
// is damaged in a way a stop cannot explain (not a write cut short), so
// that serving it could hand out wrong records. The message names the file
// and says how to recover.
var ErrDataDir = errors.New("data directory needs attention")

// Recovery says what Start repaired in a data directory left by a broker
// that did not stop cleanly (killed, crashed, power lost).
type Recovery struct {
	// Unclean is set when the last run did not stop cleanly; the other
	// fields are then filled in.
	Unclean bool
	// TornBytes is the number of bytes cut from the ends of segment and
	// log files: writes the stop interrupted.
	TornBytes int64
	// IndexEntries is the number of segment index entries rewritten to
	// match their segments.
	IndexEntries int
	// Aborted is the number of transactions (producer and partition)
	// that were open at the stop and are now closed by an abort marker.
	Aborted int
	// Topics is the number of topics added back to kfake's topic list
	// from their partition directories.
	Topics int
	// Completed is the number of partitions given the commit marker of a
	// transaction whose commit the stop interrupted; CompletedOffsets the
	// number of its group offsets written.
	Completed, CompletedOffsets int
}

// partScan is what a scan of one partition directory found.
type partScan struct {
	dir   string
	topic string
	part  int32
	// last is the last segment's .dat path, next the offset the next
	// batch gets, epoch the last batch's leader epoch, maxTS the largest
	// timestamp.
	last  string
	next  int64
	epoch int32
	maxTS int64
	// open maps producers with transactional data after their last
	// marker to the epoch of that data.
	open map[int64]int16
	// seqs holds, per idempotent producer, its last (up to 5) batches.
	seqs map[int64][]batch
	// markers are the control batches to append.
	markers [][]byte
	changed bool
}

// recoverDir checks and repairs kfake's directory kdir after an unclean
// stop: it cuts torn writes from segment and log ends, rewrites segment
// indexes from their segments, completes a commit the stop interrupted
// (journal, from the journal file, may be nil) and aborts every other
// transaction left open, with real markers and a producer epoch bump, the
// way a transaction timeout does. It refuses (ErrDataDir) a directory with
// damage a stop cannot cause.
func recoverDir(kdir string, intent *commitIntent, defaultParts int, log *slog.Logger, now time.Time) (Recovery, error) {
	rec := Recovery{Unclean: true}
	if _, err := os.Stat(kdir); os.IsNotExist(err) {
		return rec, nil
	}
	pidsLog, pidEntries, err := readLogFile(filepath.Join(kdir, "pids.log"), &rec, log)
	if err != nil {
		return rec, err
	}
	groupsLog, groupEntries, err := readLogFile(filepath.Join(kdir, "groups.log"), &rec, log)
	if err != nil {
		return rec, err
	}
	producers := replayPIDs(pidEntries)
	commits := replayCommits(groupEntries)

	dirs, err := os.ReadDir(filepath.Join(kdir, "partitions"))
	if err != nil && !os.IsNotExist(err) {
		return rec, err
	}
	var parts []*partScan
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		ps, err := scanPartition(filepath.Join(kdir, "partitions", d.Name()), &rec, log)
		if err != nil {
			return rec, err
		}
		if ps != nil {
			parts = append(parts, ps)
		}
	}

	// pidsCommit is written after the commit's markers and offsets (a
	// stop before it repeats them); pidsAbort before the abort markers.
	var pidsCommit, pidsAbort, groupsAdd []byte
	// A commit the stop interrupted: kfake had the producer's request and
	// had not finished it (its epoch is still the request's). Finish it:
	// commit markers where the transaction's data is still open, then
	// the group offsets, then the producer state kfake writes last.
	if p := producerOf(producers, intent); p != nil {
		for _, ps := range parts {
			if e, ok := ps.open[intent.PID]; ok && e == intent.Epoch {
				ps.addMarker(intent.PID, intent.Epoch, true, now)
				delete(ps.open, intent.PID)
				rec.Completed++
			}
		}
		for _, o := range intent.Offsets {
			k := commitKey{o.Group, o.Topic, o.Partition}
			if cur, ok := commits[k]; ok && cur >= o.Offset {
				continue
			}
			ms := now.UnixMilli()
			groupsAdd = appendLog(groupsAdd, groupEntry{Type: "commit", Group: o.Group, Topic: o.Topic,
				Part: o.Partition, Offset: o.Offset, Epoch: o.LeaderEpoch, Metadata: o.Metadata, LastCommit: &ms})
			rec.CompletedOffsets++
		}
		commit := true
		pidsCommit = appendLog(pidsCommit, pidEntry{Type: "endtx", PID: intent.PID, Epoch: intent.Epoch, Commit: &commit})
		if intent.Version >= 5 && p.epoch < math.MaxInt16-1 {
			p.epoch++
			pidsCommit = appendLog(pidsCommit, pidEntry{Type: "init", PID: intent.PID, Epoch: p.epoch, TxID: p.txid, Timeout: p.timeout})
		}
		log.Warn("completed a transaction commit the stop interrupted", "producer_id", intent.PID,
			"txid", intent.TxID, "partitions", rec.Completed, "group_offsets", rec.CompletedOffsets)
	}

	// Every other open transaction is aborted. The producer's epoch goes
	// up first (a client still holding the old epoch is fenced, as after
	// a transaction timeout), then the markers are written; a stop in
	// between only repeats both.
	bumped := make(map[int64]int16)
	for _, ps := range parts {
		for _, pid := range slices.Sorted(mapKeys(ps.open)) {
			epoch := ps.open[pid]
			if e, ok := bumped[pid]; ok {
				epoch = e
			} else if p := producers[pid]; p != nil {
				if p.epoch < math.MaxInt16-1 {
					p.epoch++
					pidsAbort = appendLog(pidsAbort, pidEntry{Type: "timeout", PID: pid, Epoch: p.epoch})
				}
				epoch = p.epoch
				bumped[pid] = epoch
			}
			ps.addMarker(pid, epoch, false, now)
			rec.Aborted++
			log.Warn("aborted a transaction left open by the stop", "partition", fmt.Sprintf("%s/%d", ps.topic, ps.part),
				"producer_id", pid, "epoch", epoch)
		}
	}

	if len(pidsAbort) > 0 {
		if err := appendFile(pidsLog, pidsAbort); err != nil {
			return rec, err
		}
	}
	for _, ps := range parts {
		if len(ps.markers) > 0 {
			if err := ps.writeMarkers(); err != nil {
				return rec, err
			}
		}
	}
	if len(groupsAdd) > 0 {
		if err := appendFile(groupsLog, groupsAdd); err != nil {
			return rec, err
		}
	}
	if len(pidsCommit) > 0 {
		if err := appendFile(pidsLog, pidsCommit); err != nil {
			return rec, err
		}
	}
	for _, ps := range parts {
		if ps.changed {
			// kfake would load the partition from this snapshot
			// only if the segment sizes matched; remove it so that
			// the state comes from the segments as they are now.
			if err := os.Remove(filepath.Join(ps.dir, "snapshot.json")); err != nil && !os.IsNotExist(err) {
				return rec, err
			}
		}
	}
	if err := recoverTopics(kdir, parts, defaultParts, &rec, log); err != nil {
		return rec, fmt.Errorf("rebuilding topics.json: %w", err)
	}
	if err := recoverSeqWindows(kdir, parts, producers); err != nil {
		return rec, fmt.Errorf("rebuilding seq_windows.json: %w", err)
	}
	// Member sessions saved by a shutdown that did not finish describe
	// transactions the markers above have closed.
	if err := os.Remove(filepath.Join(kdir, "session_state.json")); err == nil {
		log.Warn("removed session_state.json left by an interrupted shutdown")
	} else if !os.IsNotExist(err) {
		return rec, err
	}
	return rec, syncDir(kdir)
}

// producerOf returns the state of the producer whose commit intent names,
// if that commit still needs finishing: kfake bumps or rewrites the epoch
// once a commit is done, and fences a request whose epoch is not the
// producer's.
func producerOf(producers map[int64]*producerState, intent *commitIntent) *producerState {
	if intent == nil {
		return nil
	}
	p := producers[intent.PID]
	if p == nil || p.epoch != intent.Epoch {
		return nil
	}
	return p
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// readLogFile reads an append log, cuts a torn last entry from the file,
// and returns the path and the entries.
func readLogFile(path string, rec *Recovery, log *slog.Logger) (string, [][]byte, error) {
	raw, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return path, nil, nil
	}
	if err != nil {
		return path, nil, err
	}
	entries, valid := readLog(raw)
	if rest := raw[valid:]; len(rest) >= logHeaderSize {
		// A bad entry with whole entries' worth of bytes after it is
		// not a write the stop cut short: cutting there would drop
		// everything written after it.
		if n := int(binary.LittleEndian.Uint32(rest)); n >= 2 && 8+n < len(rest) {
			return path, nil, fmt.Errorf("%w: %s byte %d: the entry there fails its checksum and %d bytes follow it; "+
				"this is damage, not a write a stop interrupted. Restore the directory from a backup, or drop this "+
				"entry and all after it with: truncate -s %d %s", ErrDataDir, path, valid, len(rest)-8-n, valid, path)
		}
	}
	if valid < len(raw) {
		// An entry is written with one write call; what follows the
		// last whole entry is one cut short. kfake would skip it but
		// append after it, hiding every later entry from the next load.
		log.Warn("cutting a torn entry from the end of a log", "file", path, "bytes", len(raw)-valid)
		if err := os.Truncate(path, int64(valid)); err != nil {
			return path, nil, err
		}
		rec.TornBytes += int64(len(raw) - valid)
	}
	return path, entries, nil
}

// scanPartition checks the segments of one partition directory: it cuts a
// torn batch from the end of the last segment, rewrites index files that
// do not match their segments, and finds the transactions still open.
func scanPartition(dir string, rec *Recovery, log *slog.Logger) (*partScan, error) {
	name := filepath.Base(dir)
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return nil, nil
	}
	topic, err1 := url.PathUnescape(name[:i])
	part, err2 := strconv.ParseInt(name[i+1:], 10, 32)
	if err1 != nil || err2 != nil {
		return nil, nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var bases []int64
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".dat"); ok && !e.IsDir() {
			if b, err := strconv.ParseInt(n, 10, 64); err == nil {
				bases = append(bases, b)
			}
		}
	}
	slices.Sort(bases)
	ps := &partScan{dir: dir, topic: topic, part: int32(part), open: make(map[int64]int16), seqs: make(map[int64][]batch)}
	for si, base := range bases {
		path := filepath.Join(dir, strconv.FormatInt(base, 10)+".dat")
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		var idx []byte
		pos := 0
		for pos < len(raw) {
			b, err := parseBatch(raw[pos:])
			if err != nil {
				lastSeg := si == len(bases)-1
				if errors.Is(err, errTorn) && lastSeg {
					log.Warn("cutting a torn record batch from the end of a segment", "file", path,
						"at", pos, "bytes", len(raw)-pos)
					if err := os.Truncate(path, int64(pos)); err != nil {
						return nil, err
					}
					rec.TornBytes += int64(len(raw) - pos)
					ps.changed = true
					break
				}
				return nil, fmt.Errorf("%w: %s byte %d: %v; records from offset %d of %s/%d on are unreadable. "+
					"This is damage, not a write a stop interrupted. Restore the directory from a backup, "+
					"or keep what is before it with: truncate -s %d %s (and remove the later .dat and .idx files of that partition)",
					ErrDataDir, path, pos, err, ps.next, topic, part, pos, path)
			}
			if b.firstOffset < ps.next {
				return nil, fmt.Errorf("%w: %s byte %d: batch at offset %d overlaps the batch before (which ends at %d); "+
					"restore the directory from a backup, or remove %s to drop the partition's records",
					ErrDataDir, path, pos, b.firstOffset, ps.next, dir)
			}
			b.pos = int64(pos)
			pos += int(b.size)
			ps.next = b.end()
			ps.epoch = b.leaderEpoch
			ps.maxTS = max(ps.maxTS, b.maxTimestamp)
			e := indexEntry(b.leaderEpoch, ps.maxTS, b.txData())
			idx = append(idx, e[:]...)
			switch {
			case b.control():
				delete(ps.open, b.producerID)
			case b.transactional():
				ps.open[b.producerID] = b.producerEpoch
			}
			if !b.control() && b.producerID >= 0 && b.firstSequence >= 0 {
				w := append(ps.seqs[b.producerID], b)
				if len(w) > 5 {
					w = w[1:]
				}
				ps.seqs[b.producerID] = w
			}
		}
		ps.last = path
		idxPath := filepath.Join(dir, strconv.FormatInt(base, 10)+".idx")
		old, err := os.ReadFile(idxPath)
		if err != nil && !os.IsNotExist(err) {
			return nil, err
		}
		if n := indexDiff(old, idx); n > 0 {
			log.Warn("rewriting a segment index that does not match its segment", "file", idxPath,
				"entries", len(idx)/indexEntrySize, "wrong_or_missing", n)
			if err := writeFileAtomic(idxPath, idx); err != nil {
				return nil, err
			}
			rec.IndexEntries += n
			ps.changed = true
		}
	}
	return ps, nil
}

// indexDiff counts the index entries of want that got lacks or has
// otherwise (ignoring the stored maximum timestamp, which kfake
// recomputes on load), plus entries got has beyond want.
func indexDiff(got, want []byte) int {
	n := 0
	for i := 0; i < len(want); i += indexEntrySize {
		w := want[i : i+indexEntrySize]
		if i+indexEntrySize > len(got) {
			n++
			continue
		}
		g := got[i : i+indexEntrySize]
		if g[0] != w[0] || !bytes.Equal(g[2:6], w[2:6]) || g[14] != w[14] {
			n++
		}
	}
	if len(got) > len(want) {
		n += (len(got) - len(want) + indexEntrySize - 1) / indexEntrySize
	}
	return n
}

func (ps *partScan) addMarker(pid int64, epoch int16, commit bool, now time.Time) {
	ps.markers = append(ps.markers, markerBatch(ps.next, ps.epoch, pid, epoch, commit, now))
	ps.next++
	ps.changed = true
}

// writeMarkers appends the partition's marker batches to its last segment
// and their entries to the segment's index.
func (ps *partScan) writeMarkers() error {
	var dat, idx []byte
	for _, m := range ps.markers {
		dat = append(dat, m...)
		ps.maxTS = max(ps.maxTS, time.Now().UnixMilli())
		e := indexEntry(ps.epoch, ps.maxTS, false)
		idx = append(idx, e[:]...)
	}
	if err := appendFile(ps.last, dat); err != nil {
		return err
	}
	return appendFile(strings.TrimSuffix(ps.last, ".dat")+".idx", idx)
}

func appendFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".repair"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	f, err := os.Open(tmp)
	if err == nil {
		err = f.Sync()
		f.Close()
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be opened for syncing there
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// topicsFile is kfake's topics.json.
type topicsFile struct {
	Version int          `json:"version"`
	Topics  []topicEntry `json:"topics"`
}

type topicEntry struct {
	Name       string            `json:"name"`
	ID         []byte            `json:"id"` // 16 bytes; base64 in JSON, as kfake writes it
	Partitions int               `json:"partitions"`
	Replicas   int               `json:"replicas"`
	Configs    map[string]string `json:"configs,omitempty"`
}

// recoverTopics adds to topics.json the topics that have partition
// directories but are missing from it (kfake would ignore their records,
// and write a new topic of the same name over them), and raises partition
// counts below the partition directories found.
func recoverTopics(kdir string, parts []*partScan, defaultParts int, rec *Recovery, log *slog.Logger) error {
	if len(parts) == 0 {
		return nil
	}
	path := filepath.Join(kdir, "topics.json")
	var tf topicsFile
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(raw, &tf); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	case os.IsNotExist(err):
		tf.Version = formatVersion
	default:
		return err
	}
	need := make(map[string]int)
	for _, ps := range parts {
		need[ps.topic] = max(need[ps.topic], int(ps.part)+1)
	}
	have := make(map[string]*topicEntry)
	for i := range tf.Topics {
		have[tf.Topics[i].Name] = &tf.Topics[i]
	}
	changed := false
	for _, name := range slices.Sorted(mapKeys(need)) {
		n := need[name]
		if t := have[name]; t != nil {
			if t.Partitions < n {
				log.Warn("topics.json lists fewer partitions than the data directory has", "topic", name, "listed", t.Partitions, "found", n)
				t.Partitions, changed = n, true
			}
			continue
		}
		id := make([]byte, 16)
		if _, err := rand.Read(id); err != nil {
			return err
		}
		tf.Topics = append(tf.Topics, topicEntry{Name: name, ID: id, Partitions: max(n, defaultParts), Replicas: 1})
		log.Warn("topic missing from topics.json; adding it from its partition directories", "topic", name, "partitions", max(n, defaultParts))
		rec.Topics++
		changed = true
	}
	if !changed {
		return nil
	}
	out, err := json.Marshal(tf)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, out)
}

// recoverSeqWindows rewrites seq_windows.json from the segments. kfake
// writes it only at a clean shutdown, so after an unclean stop it is stale
// or empty: stale windows reject a producer's next batch as out of order,
// empty ones accept the retry of a batch the stop came after, twice.
func recoverSeqWindows(kdir string, parts []*partScan, producers map[int64]*producerState) error {
	f := seqWindowsFile{Version: formatVersion, Windows: []seqWindow{}}
	for _, ps := range parts {
		for _, pid := range slices.Sorted(mapKeys(ps.seqs)) {
			if producers[pid] == nil {
				continue // kfake drops windows of producers it does not know
			}
			bs := ps.seqs[pid]
			w := seqWindow{PID: pid, Topic: ps.topic, Partition: ps.part, Seen: true}
			for _, b := range bs {
				if b.producerEpoch != bs[len(bs)-1].producerEpoch {
					continue // only the current epoch's batches count
				}
				next := nextSeq(b.firstSequence, b.numRecords)
				w.Entries[w.Count] = seqEntry{FirstSeq: b.firstSequence, NextSeq: next, Offset: b.firstOffset}
				w.Count++
				w.NextSeq = next
				w.Epoch = b.producerEpoch
			}
			w.At = w.Count % 5
			f.Windows = append(f.Windows, w)
		}
	}
	out, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(kdir, "seq_windows.json"), out)
}
