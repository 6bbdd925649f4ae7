package beacon

import (
	"unicode/utf8"
)

// scanner is a minimal JSON reader for the handful of shapes an event body
// has. It exists instead of encoding/json because the body is read on every
// request: decoding kept strings straight into the parser's arena, and only
// validating the rest, keeps a parse at a few allocations.
//
// Every method reports failure as an *Error; none of them panics on any input
// (FuzzParse checks this).
type scanner struct {
	data []byte
	i    int
}

// maxDepth bounds nesting inside fields the parser skips; real bodies are flat.
const maxDepth = 32

func (s *scanner) ws() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next byte after white space, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.data) {
		return s.data[s.i]
	}
	return 0
}

// expect consumes c (after white space).
func (s *scanner) expect(c byte) *Error {
	if s.peek() != c {
		return errMalformed
	}
	s.i++
	return nil
}

// str reads the string starting at s.i (the opening quote) and appends its
// decoded content to dst. Raw control bytes are malformed JSON; escaped ones
// are decoded and left for the caller's text check. A lone surrogate cannot
// be represented in UTF-8 and is reported as invalid_utf8 rather than
// silently replaced.
func (s *scanner) str(dst []byte) ([]byte, *Error) {
	if s.i >= len(s.data) || s.data[s.i] != '"' {
		return dst, errMalformed
	}
	s.i++
	start := s.i
	for s.i < len(s.data) {
		c := s.data[s.i]
		switch {
		case c == '"':
			dst = append(dst, s.data[start:s.i]...)
			s.i++
			return dst, nil
		case c == '\\':
			dst = append(dst, s.data[start:s.i]...)
			var err *Error
			if dst, err = s.escape(dst); err != nil {
				return dst, err
			}
			start = s.i
		case c < 0x20:
			return dst, errMalformed
		default:
			s.i++
		}
	}
	return dst, errMalformed
}

// view reads a string like str, but returns a slice of the input when the
// string has no escapes, and decodes into buf only when it has. The result is
// valid until buf or the input is reused.
func (s *scanner) view(buf []byte) (v, bufOut []byte, err *Error) {
	if s.i >= len(s.data) || s.data[s.i] != '"' {
		return nil, buf, errMalformed
	}
	for j := s.i + 1; j < len(s.data); j++ {
		switch c := s.data[j]; {
		case c == '"':
			v = s.data[s.i+1 : j]
			s.i = j + 1
			return v, buf, nil
		case c == '\\' || c < 0x20:
			buf, err = s.str(buf[:0])
			return buf, buf, err
		}
	}
	return nil, buf, errMalformed
}

// escape decodes one escape sequence at s.i (the backslash).
func (s *scanner) escape(dst []byte) ([]byte, *Error) {
	if s.i+1 >= len(s.data) {
		return dst, errMalformed
	}
	c := s.data[s.i+1]
	s.i += 2
	switch c {
	case '"', '\\', '/':
		return append(dst, c), nil
	case 'b':
		return append(dst, '\b'), nil
	case 'f':
		return append(dst, '\f'), nil
	case 'n':
		return append(dst, '\n'), nil
	case 'r':
		return append(dst, '\r'), nil
	case 't':
		return append(dst, '\t'), nil
	case 'u':
	default:
		return dst, errMalformed
	}
	r, ok := s.hex4()
	if !ok {
		return dst, errMalformed
	}
	if utf8.ValidRune(r) {
		return utf8.AppendRune(dst, r), nil
	}
	// r is a surrogate: only a high one followed by an escaped low one is text.
	if r >= 0xdc00 || s.i+1 >= len(s.data) || s.data[s.i] != '\\' || s.data[s.i+1] != 'u' {
		return dst, errInvalidUTF8
	}
	s.i += 2
	lo, ok := s.hex4()
	if !ok {
		return dst, errMalformed
	}
	if lo < 0xdc00 || lo > 0xdfff {
		return dst, errInvalidUTF8
	}
	return utf8.AppendRune(dst, 0x10000+(r-0xd800)<<10+(lo-0xdc00)), nil
}

func (s *scanner) hex4() (rune, bool) {
	if s.i+4 > len(s.data) {
		return 0, false
	}
	var r rune
	for _, c := range s.data[s.i : s.i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	s.i += 4
	return r, true
}

// number reads a JSON number at s.i and returns its text.
func (s *scanner) number() ([]byte, *Error) {
	start := s.i
	if s.i < len(s.data) && s.data[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.data) && s.data[s.i] == '0':
		s.i++
	case s.digits() == 0:
		return nil, errMalformed
	}
	if s.i < len(s.data) && s.data[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return nil, errMalformed
		}
	}
	if s.i < len(s.data) && (s.data[s.i] == 'e' || s.data[s.i] == 'E') {
		s.i++
		if s.i < len(s.data) && (s.data[s.i] == '+' || s.data[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return nil, errMalformed
		}
	}
	return s.data[start:s.i], nil
}

func (s *scanner) digits() int {
	n := 0
	for s.i < len(s.data) && '0' <= s.data[s.i] && s.data[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

// literal consumes true, false or null at s.i.
func (s *scanner) literal(lit string) *Error {
	if len(s.data)-s.i < len(lit) || string(s.data[s.i:s.i+len(lit)]) != lit {
		return errMalformed
	}
	s.i += len(lit)
	return nil
}

// boolOrNull reads true, false or null; null reports ok == false.
func (s *scanner) boolOrNull() (v, ok bool, err *Error) {
	switch s.peek() {
	case 't':
		return true, true, s.literal("true")
	case 'f':
		return false, true, s.literal("false")
	case 'n':
		return false, false, s.literal("null")
	}
	return false, false, errWrongType
}

// skip validates and discards any value.
func (s *scanner) skip(depth int) *Error {
	if depth > maxDepth {
		return errMalformed
	}
	switch c := s.peek(); {
	case c == '"':
		var buf [64]byte // escaped strings in skipped fields decode here, not on the heap
		_, _, err := s.view(buf[:0])
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		_, err := s.number()
		return err
	case c == '[':
		s.i++
		if s.peek() == ']' {
			s.i++
			return nil
		}
		for {
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			switch s.peek() {
			case ',':
				s.i++
			case ']':
				s.i++
				return nil
			default:
				return errMalformed
			}
		}
	case c == '{':
		var buf [64]byte
		more, err := s.open()
		for more && err == nil {
			if _, _, err = s.key(buf[:0]); err != nil {
				return err
			}
			if err = s.skip(depth + 1); err != nil {
				return err
			}
			more, err = s.next()
		}
		return err
	}
	return errMalformed
}

// Objects are read with a loop rather than a callback, which would make the
// scanner escape to the heap:
//
//	more, err := s.open()
//	for more && err == nil {
//		key, keyBuf, err = s.key(keyBuf)
//		... consume the value, return on error ...
//		more, err = s.next()
//	}

// open consumes '{' and reports whether members follow.
func (s *scanner) open() (bool, *Error) {
	if err := s.expect('{'); err != nil {
		return false, err
	}
	if s.peek() == '}' {
		s.i++
		return false, nil
	}
	return true, nil
}

// key reads a member name and its colon; the name is valid until buf or the
// input is reused. s is left at the value.
func (s *scanner) key(buf []byte) (key, bufOut []byte, err *Error) {
	if s.peek() != '"' {
		return nil, buf, errMalformed
	}
	if key, buf, err = s.view(buf); err != nil {
		return nil, buf, err
	}
	if err := s.expect(':'); err != nil {
		return nil, buf, err
	}
	s.ws()
	return key, buf, nil
}

// next consumes the separator after a member's value and reports whether
// another member follows.
func (s *scanner) next() (bool, *Error) {
	switch s.peek() {
	case ',':
		s.i++
		return true, nil
	case '}':
		s.i++
		return false, nil
	}
	return false, errMalformed
}

// end reports whether only white space is left.
func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.data)
}
