package broker

// This file reads and appends to kfake's data directory (franz-go
// pkg/kfake, persist format version 1), which Start checks and repairs
// after an unclean stop. The layout, as kfake writes it:
//
//	meta.json, topics.json, ...      JSON state written at clean shutdown
//	pids.log, groups.log             append logs of framed JSON entries
//	partitions/<topic>-<p>/<base>.dat  Kafka RecordBatch (v2) wire bytes
//	partitions/<topic>-<p>/<base>.idx  15 bytes per batch of the .dat
//	partitions/<topic>-<p>/snapshot.json  partition state at clean shutdown
//
// A log entry is [4 length LE][4 CRC-32C of the rest LE][2 version LE][JSON],
// length counting the version and the JSON. An index entry is
// [1 version][1 low byte of the CRC-32C of the next 13 bytes][4 leader epoch
// LE][8 max timestamp so far LE][1 flags: bit 0 transactional data].

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const (
	formatVersion  = 1
	logHeaderSize  = 10
	indexEntrySize = 15
	// batchHeaderSize is the size of a v2 RecordBatch header, up to and
	// including NumRecords.
	batchHeaderSize = 61

	attrTransactional = 0x10
	attrControl       = 0x20
)

// readLog splits an append log into its entries' JSON and returns the
// number of bytes that hold whole, intact entries. What follows them is a
// torn or damaged write.
func readLog(raw []byte) (entries [][]byte, valid int) {
	pos := 0
	for pos+logHeaderSize <= len(raw) {
		n := int(binary.LittleEndian.Uint32(raw[pos:]))
		if n < 2 || pos+8+n > len(raw) {
			break
		}
		body := raw[pos+8 : pos+8+n]
		if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(raw[pos+4:]) {
			break
		}
		entries = append(entries, body[2:])
		pos += 8 + n
	}
	return entries, pos
}

// appendLog frames v as a log entry and appends it to dst.
func appendLog(dst []byte, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain structs are marshalled
	}
	var h [logHeaderSize]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(2+len(data)))
	binary.LittleEndian.PutUint16(h[8:], formatVersion)
	crc := crc32.Update(crc32.Checksum(h[8:], castagnoli), castagnoli, data)
	binary.LittleEndian.PutUint32(h[4:], crc)
	return append(append(dst, h[:]...), data...)
}

// pidEntry is an entry of pids.log.
type pidEntry struct {
	Type    string `json:"type"` // init, endtx, timeout
	PID     int64  `json:"pid"`
	Epoch   int16  `json:"epoch"`
	TxID    string `json:"txid,omitempty"`
	Timeout int32  `json:"timeout,omitempty"`
	Commit  *bool  `json:"commit,omitempty"`
}

// groupEntry is an entry of groups.log; only offset commits and deletions
// matter here.
type groupEntry struct {
	Type       string  `json:"type"`
	Group      string  `json:"g"`
	Topic      string  `json:"t,omitempty"`
	Part       int32   `json:"p,omitempty"`
	Offset     int64   `json:"o,omitempty"`
	Epoch      int32   `json:"e,omitempty"`
	Metadata   *string `json:"m,omitempty"`
	LastCommit *int64  `json:"lc,omitempty"`
}

// producerState is a transactional producer as pids.log leaves it.
type producerState struct {
	epoch   int16
	txid    string
	timeout int32
}

// replayPIDs returns each producer's last state from pids.log entries.
func replayPIDs(entries [][]byte) map[int64]*producerState {
	m := make(map[int64]*producerState)
	for _, e := range entries {
		var pe pidEntry
		if json.Unmarshal(e, &pe) != nil {
			continue
		}
		switch pe.Type {
		case "init":
			m[pe.PID] = &producerState{epoch: pe.Epoch, txid: pe.TxID, timeout: pe.Timeout}
		case "endtx", "timeout":
			if p := m[pe.PID]; p != nil {
				p.epoch = pe.Epoch
			}
		}
	}
	return m
}

type commitKey struct {
	group, topic string
	part         int32
}

// replayCommits returns the committed offset of every group partition in
// groups.log entries.
func replayCommits(entries [][]byte) map[commitKey]int64 {
	m := make(map[commitKey]int64)
	for _, e := range entries {
		var ge groupEntry
		if json.Unmarshal(e, &ge) != nil {
			continue
		}
		k := commitKey{ge.Group, ge.Topic, ge.Part}
		switch ge.Type {
		case "commit":
			m[k] = ge.Offset
		case "delete":
			delete(m, k)
		}
	}
	return m
}

// batch is the header of one RecordBatch in a segment file.
type batch struct {
	pos, size       int64
	firstOffset     int64
	lastOffsetDelta int32
	leaderEpoch     int32
	attrs           int16
	maxTimestamp    int64
	producerID      int64
	producerEpoch   int16
	firstSequence   int32
	numRecords      int32
	// commit is set for a control batch that commits (else it aborts).
	commit bool
}

func (b *batch) control() bool       { return b.attrs&attrControl != 0 }
func (b *batch) transactional() bool { return b.attrs&attrTransactional != 0 }
func (b *batch) txData() bool        { return b.transactional() && !b.control() }
func (b *batch) end() int64          { return b.firstOffset + int64(b.lastOffsetDelta) + 1 }

// errTorn is returned by parseBatch for bytes that end before the batch
// they start is complete: the trace of a write cut short.
var errTorn = errors.New("incomplete record batch")

// parseBatch reads the RecordBatch at the start of raw and returns its
// header and size. A batch whose bytes are all there but fail the CRC or
// the format checks is an error other than errTorn.
func parseBatch(raw []byte) (batch, error) {
	if len(raw) < 12 {
		return batch{}, errTorn
	}
	length := int64(int32(binary.BigEndian.Uint32(raw[8:])))
	if length < batchHeaderSize-12 || length > 1<<30 {
		return batch{}, fmt.Errorf("record batch length %d out of range", length)
	}
	size := 12 + length
	if int64(len(raw)) < size {
		return batch{}, errTorn
	}
	raw = raw[:size]
	if raw[16] != 2 {
		return batch{}, fmt.Errorf("record batch magic %d, want 2", raw[16])
	}
	if got, want := crc32.Checksum(raw[21:], castagnoli), binary.BigEndian.Uint32(raw[17:]); got != want {
		return batch{}, fmt.Errorf("record batch CRC %08x, stored %08x", got, want)
	}
	b := batch{
		size:            size,
		firstOffset:     int64(binary.BigEndian.Uint64(raw[0:])),
		leaderEpoch:     int32(binary.BigEndian.Uint32(raw[12:])),
		attrs:           int16(binary.BigEndian.Uint16(raw[21:])),
		lastOffsetDelta: int32(binary.BigEndian.Uint32(raw[23:])),
		maxTimestamp:    int64(binary.BigEndian.Uint64(raw[35:])),
		producerID:      int64(binary.BigEndian.Uint64(raw[43:])),
		producerEpoch:   int16(binary.BigEndian.Uint16(raw[51:])),
		firstSequence:   int32(binary.BigEndian.Uint32(raw[53:])),
		numRecords:      int32(binary.BigEndian.Uint32(raw[57:])),
	}
	if b.lastOffsetDelta < 0 {
		return batch{}, fmt.Errorf("record batch last offset delta %d", b.lastOffsetDelta)
	}
	if b.control() {
		var rec kmsg.Record
		if err := rec.ReadFrom(raw[batchHeaderSize:]); err != nil || len(rec.Key) < 4 {
			return batch{}, fmt.Errorf("control batch at offset %d: unreadable control record", b.firstOffset)
		}
		b.commit = int16(binary.BigEndian.Uint16(rec.Key[2:])) == int16(kmsg.ControlRecordKeyTypeCommit)
	}
	return b, nil
}

// indexEntry encodes a segment index entry.
func indexEntry(leaderEpoch int32, maxTimestamp int64, txData bool) [indexEntrySize]byte {
	var e [indexEntrySize]byte
	e[0] = formatVersion
	binary.LittleEndian.PutUint32(e[2:], uint32(leaderEpoch))
	binary.LittleEndian.PutUint64(e[6:], uint64(maxTimestamp))
	if txData {
		e[14] = 1
	}
	e[1] = byte(crc32.Checksum(e[2:], castagnoli))
	return e
}

// markerBatch encodes a control batch that commits or aborts producer
// pid's transaction, at offset, as a transaction coordinator writes it:
// one control record whose key names the marker type and whose value is an
// EndTxnMarker (coordinator epoch 0, as kfake writes).
func markerBatch(offset int64, leaderEpoch int32, pid int64, epoch int16, commit bool, now time.Time) []byte {
	key := kmsg.ControlRecordKey{Type: kmsg.ControlRecordKeyTypeAbort}
	if commit {
		key.Type = kmsg.ControlRecordKeyTypeCommit
	}
	marker := kmsg.EndTxnMarker{}
	rec := kmsg.Record{Key: key.AppendTo(nil), Value: marker.AppendTo(nil)}
	// The record's length is a varint of the bytes after it; with a
	// 4-byte key and 6-byte value that is below 64, one varint byte.
	rec.Length = int32(len(rec.AppendTo(nil)) - 1)
	ms := now.UnixMilli()
	return encodeBatch(kmsg.RecordBatch{
		FirstOffset:          offset,
		PartitionLeaderEpoch: leaderEpoch,
		Attributes:           attrControl | attrTransactional,
		FirstTimestamp:       ms,
		MaxTimestamp:         ms,
		ProducerID:           pid,
		ProducerEpoch:        epoch,
		FirstSequence:        -1,
		NumRecords:           1,
		Records:              rec.AppendTo(nil),
	})
}

// encodeBatch encodes b as a v2 record batch, filling in its length and
// CRC.
func encodeBatch(b kmsg.RecordBatch) []byte {
	b.Magic = 2
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], castagnoli))
	return raw
}

// seqWindowsFile is kfake's seq_windows.json: per producer and partition,
// the last five batches' sequence numbers, against which it recognises a
// producer's retry of a batch it already has.
type seqWindowsFile struct {
	Version int         `json:"version"`
	Windows []seqWindow `json:"windows"`
}

type seqWindow struct {
	PID       int64       `json:"pid"`
	Topic     string      `json:"topic"`
	Partition int32       `json:"partition"`
	Entries   [5]seqEntry `json:"entries"`
	Count     uint8       `json:"count"`
	At        uint8       `json:"at"`
	Epoch     int16       `json:"epoch"`
	Seen      bool        `json:"seen"`
	NextSeq   int32       `json:"next_seq"`
}

type seqEntry struct {
	FirstSeq int32 `json:"first_seq"`
	NextSeq  int32 `json:"next_seq"`
	Offset   int64 `json:"offset"`
}

// nextSeq is the sequence number after a batch's, as kfake computes it.
func nextSeq(first, n int32) int32 {
	return int32((int64(first) + int64(n)) % math.MaxInt32)
}
