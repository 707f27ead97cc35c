// NCCL_PROTO: the protocols the ring kernel (device_ring.h) may use.
//
// NCCL's syntax: a comma list of protocol names (LL, LL128, Simple, in any
// case), or ^ and such a list for all but those. Chorus has LL and Simple;
// LL128 is accepted and never chosen. With both allowed, LL carries the
// small collectives and Simple the rest; with one, it carries everything.
#pragma once

#include <cstddef>
#include <string>

namespace chorus {

struct ProtocolChoice {
  bool ll = true;
  bool simple = true;

  bool operator==(const ProtocolChoice& other) const {
    return ll == other.ll && simple == other.simple;
  }
  // Whether a collective of `bytesPerRank` runs on LL; `llMaxBytes` is the
  // size up to which LL wins when both are allowed.
  bool useLL(size_t bytesPerRank, size_t llMaxBytes) const {
    if (!simple) return true;
    return ll && bytesPerRank <= llMaxBytes;
  }
};

// Parses an NCCL_PROTO value ("" allows both). A name that is not a
// protocol, or a value that leaves neither LL nor Simple, gives both and
// says why in *problem; entries for one collective (after a semicolon,
// "allreduce:^LL") are ignored, also with a word in *problem, which is
// empty when the whole value was used.
ProtocolChoice parseProtocols(const std::string& value, std::string* problem);

// NCCL_PROTO from the environment; a problem is logged as a warning.
ProtocolChoice protocolsFromSettings();

// "LL,Simple", "LL" or "Simple", for messages.
std::string protocolNames(const ProtocolChoice& choice);

}  // namespace chorus
