package broker

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// journalFile holds, while a transaction commit is being carried out, what
// the commit must do: kfake writes a commit's markers partition by
// partition, then the group offsets, then the producer's state, and keeps
// the offsets of a transaction in memory until then. A stop in between
// would leave part of the transaction committed; Start completes it from
// this record.
const journalFile = "txn-commit"

// commitIntent is the journal's record of one EndTxn(commit) request.
type commitIntent struct {
	PID     int64          `json:"pid"`
	Epoch   int16          `json:"epoch"`
	TxID    string         `json:"txid"`
	Version int16          `json:"version"` // of the EndTxn request
	Offsets []intentOffset `json:"offsets,omitempty"`
}

type intentOffset struct {
	Group       string  `json:"group"`
	Topic       string  `json:"topic"`
	Partition   int32   `json:"partition"`
	Offset      int64   `json:"offset"`
	LeaderEpoch int32   `json:"leader_epoch"`
	Metadata    *string `json:"metadata,omitempty"`
}

// journal watches the transaction and topic requests kfake handles
// (through control functions that never handle a request themselves) and
// keeps journalFile: the offsets each producer's open transaction has
// sent, written out when the producer asks to commit, and cleared when
// kfake is about to handle the next transaction request (it handles
// requests one at a time, so by then the commit is complete). An intent
// left in the file after its commit completed (no transaction request
// came before the stop) is harmless: Start finds nothing left to do for
// it, because kfake moves a producer's epoch on after each commit, or,
// for clients older than KIP-890, finds no data of a later transaction,
// which such a client opens with AddPartitionsToTxn.
type journal struct {
	cluster *kfake.Cluster
	f       *os.File
	sync    bool
	log     *slog.Logger

	mu       sync.Mutex
	offsets  map[int64]*txnOffsets // by producer ID
	known    map[string]bool       // topics this journal has made sure of
	names    map[[16]byte]string   // topic names by ID
	written  kmsg.Request          // the EndTxn whose intent is in f
	since    map[int16]time.Time   // when each key's control function was added
	refresh  time.Duration         // journalRefresh; tests shorten it
	failures int
}

// journalKeys are the requests the journal watches. The busy ones
// (Produce, Fetch, heartbeats) are left alone: a control function costs
// kfake a goroutine hand-off per request.
var journalKeys = []kmsg.Key{kmsg.Metadata, kmsg.DeleteTopics, kmsg.InitProducerID, kmsg.AddPartitionsToTxn,
	kmsg.AddOffsetsToTxn, kmsg.TxnOffsetCommit, kmsg.EndTxn}

type txnOffsets struct {
	epoch int16
	m     map[commitKey]intentOffset
}

// journalRefresh is how often the control function is replaced by a fresh
// one: kfake remembers the last request of every connection a control
// function has seen, so a long-lived one would keep closed connections.
const journalRefresh = 10 * time.Minute

func openJournal(path string, syncWrites bool, log *slog.Logger) (*journal, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("transaction journal: %w", err)
	}
	return &journal{f: f, sync: syncWrites, log: log, offsets: make(map[int64]*txnOffsets), known: make(map[string]bool), names: make(map[[16]byte]string),
		refresh: journalRefresh}, nil
}

func (j *journal) install(c *kfake.Cluster) {
	j.cluster = c
	j.since = make(map[int16]time.Time)
	for _, k := range journalKeys {
		j.since[int16(k)] = time.Now()
		c.ControlKey(int16(k), j.control)
	}
}

func (j *journal) close() error { return j.f.Close() }

// control observes one request before kfake handles it.
func (j *journal) control(req kmsg.Request) (kmsg.Response, error, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.written != nil && req != j.written {
		j.clear()
	}
	switch r := req.(type) {
	case *kmsg.TxnOffsetCommitRequest:
		t := j.offsets[r.ProducerID]
		if t == nil || t.epoch != r.ProducerEpoch {
			t = &txnOffsets{epoch: r.ProducerEpoch, m: make(map[commitKey]intentOffset)}
			j.offsets[r.ProducerID] = t
		}
		for _, rt := range r.Topics {
			topic := rt.Topic
			if r.Version >= 6 {
				topic = j.topicName(rt.TopicID)
			}
			if topic == "" {
				continue // kfake answers UNKNOWN_TOPIC_ID and commits nothing for it
			}
			for _, rp := range rt.Partitions {
				t.m[commitKey{r.Group, topic, rp.Partition}] = intentOffset{
					Group: r.Group, Topic: topic, Partition: rp.Partition,
					Offset: rp.Offset, LeaderEpoch: rp.LeaderEpoch, Metadata: rp.Metadata,
				}
			}
		}
	case *kmsg.EndTxnRequest:
		t := j.offsets[r.ProducerID]
		delete(j.offsets, r.ProducerID)
		if r.Commit {
			in := commitIntent{PID: r.ProducerID, Epoch: r.ProducerEpoch, TxID: r.TransactionalID, Version: r.Version}
			if t != nil && t.epoch == r.ProducerEpoch {
				for _, o := range t.m {
					in.Offsets = append(in.Offsets, o)
				}
			}
			j.write(in)
			j.written = req
		}
	case *kmsg.MetadataRequest:
		// kfake writes topics.json for topics created by CreateTopics
		// but not for those a Metadata request creates, until a clean
		// shutdown: a kill -9 would lose them and their records. Create
		// them here, through the path that writes topics.json, first.
		if r.AllowAutoTopicCreation && j.cluster != nil {
			for _, t := range r.Topics {
				if t.Topic != nil && *t.Topic != "" && !j.known[*t.Topic] {
					// An error means it exists or the name is bad;
					// kfake's handler then answers as usual.
					_ = j.cluster.CreateTopic(*t.Topic, -1, nil)
					j.known[*t.Topic] = true
				}
			}
		}
	case *kmsg.DeleteTopicsRequest:
		clear(j.names)
		for _, n := range r.TopicNames {
			delete(j.known, n)
		}
		for _, t := range r.Topics {
			if t.Topic != nil {
				delete(j.known, *t.Topic)
			}
		}
	case *kmsg.InitProducerIDRequest:
		if r.ProducerID >= 0 {
			delete(j.offsets, r.ProducerID)
		}
	}
	if k := req.Key(); j.cluster != nil && time.Since(j.since[k]) > j.refresh {
		j.cluster.DropControl()
		j.since[k] = time.Now()
		j.cluster.ControlKey(k, j.control)
	}
	return nil, nil, false
}

// topicName returns the name of the topic with the given ID ("" if there
// is none): TxnOffsetCommit v6 names topics by ID.
func (j *journal) topicName(id [16]byte) string {
	if n, ok := j.names[id]; ok {
		return n
	}
	if j.cluster == nil {
		return ""
	}
	info := j.cluster.TopicIDInfo(id)
	if info == nil {
		return ""
	}
	j.names[id] = info.Topic
	return info.Topic
}

func (j *journal) write(in commitIntent) {
	buf := appendLog(nil, in)
	_, err := j.f.WriteAt(buf, 0)
	if err == nil && j.sync {
		err = j.f.Sync()
	}
	if err != nil {
		j.failures++
		j.log.Error("transaction journal: write failed; a stop during this commit could leave it half done", "err", err)
	}
}

func (j *journal) clear() {
	j.written = nil
	if err := j.f.Truncate(0); err != nil {
		j.failures++
		j.log.Error("transaction journal: clear failed", "err", err)
	}
}

// readJournal returns the commit recorded in path, if any.
func readJournal(path string) (*commitIntent, error) {
	raw, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	entries, _ := readLog(raw)
	if len(entries) == 0 {
		// Empty, or a torn write of an intent whose commit had not
		// started: kfake handles a request only after its control
		// function returns.
		return nil, nil
	}
	var in commitIntent
	if err := json.Unmarshal(entries[0], &in); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &in, nil
}
