// Package wire is the contract Breakwater shares with other programs and
// with its own Lua scripts: the names of the Kafka headers it adds to what
// it writes, and the layout of its Redis keys. Everything that reads or
// writes either gets the names from here; the Lua scripts get their keys in
// KEYS and their constants as arguments, never by building them.
package wire
