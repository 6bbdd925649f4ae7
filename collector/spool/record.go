package spool

import (
	"encoding/binary"
	"hash/crc32"
)

// A segment file is a magic header followed by records, each framed as
//
//	length  uint32 little-endian, bytes of payload (1..MaxRecord)
//	crc     uint32 little-endian, CRC-32C of the payload
//	payload
//
// A record is written by one write(2) together with the rest of its group,
// never across two segments, so a crash leaves at most a torn tail; a flipped
// bit anywhere is caught by the checksum. The length is not covered by the
// checksum on its own, but a wrong length makes the checksum land on the
// wrong bytes, which fails it just the same.
const (
	magic      = "turfspl1" // format version 1
	headerSize = int64(len(magic))
	frameSize  = 8

	// MaxRecord bounds one record; a length above it is corruption, which
	// also keeps a flipped high bit in a length from making the reader
	// allocate gigabytes.
	MaxRecord = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendFrame appends rec, framed, to buf.
func appendFrame(buf, rec []byte) []byte {
	return appendFrameSum(buf, rec, checksum(rec))
}

// appendFrameSum is appendFrame with rec's checksum computed beforehand, so
// that Append computes it before taking the lock the handlers share.
func appendFrameSum(buf, rec []byte, sum uint32) []byte {
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(rec)))
	buf = binary.LittleEndian.AppendUint32(buf, sum)
	return append(buf, rec...)
}

func checksum(rec []byte) uint32 { return crc32.Checksum(rec, castagnoli) }

// parseFrame reads the record at the start of b. It returns the payload and
// the bytes the framed record takes; n == 0 means b does not start with an
// intact record (too short, implausible length or wrong checksum).
func parseFrame(b []byte) (payload []byte, n int) {
	if len(b) < frameSize {
		return nil, 0
	}
	size := binary.LittleEndian.Uint32(b)
	if size == 0 || size > MaxRecord || int64(size) > int64(len(b)-frameSize) {
		return nil, 0
	}
	payload = b[frameSize : frameSize+int(size)]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return nil, 0
	}
	return payload, frameSize + int(size)
}

// resync finds the next intact record in b after a corrupt one at b[0]: the
// offset of the first position from 1 on where one starts, or len(b) when
// none does. A random 4-byte length is plausible about once in 4096
// positions and then the checksum must match too, so a false resync is
// vanishingly unlikely.
func resync(b []byte) int {
	for i := 1; i+frameSize <= len(b); i++ {
		if _, n := parseFrame(b[i:]); n > 0 {
			return i
		}
	}
	return len(b)
}
