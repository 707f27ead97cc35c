#include "runtime/protocol_setting.h"

#include <strings.h>

#include "common/log.h"
#include "common/settings.h"

namespace chorus {

namespace {

// One list: names separated by commas (empty ones skipped, as NCCL's parser
// does), or ^ and such a list. False, with *problem, for a name that is not
// a protocol.
bool parseList(const std::string& list, ProtocolChoice* choice, std::string* problem) {
  const bool exclude = !list.empty() && list[0] == '^';
  bool named[3] = {false, false, false};  // LL, LL128, Simple
  const char* const kNames[3] = {"LL", "LL128", "Simple"};
  for (size_t start = exclude ? 1 : 0; start <= list.size();) {
    size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    const std::string name = list.substr(start, end - start);
    start = end + 1;
    if (name.empty()) continue;
    int which = -1;
    for (int p = 0; p < 3; ++p)
      if (strcasecmp(name.c_str(), kNames[p]) == 0) which = p;
    if (which < 0) {
      *problem = "\"" + name + "\" is not a protocol (LL, LL128, Simple)";
      return false;
    }
    named[which] = true;
  }
  if (!named[0] && !named[1] && !named[2]) return true;  // no names: the default
  choice->ll = named[0] != exclude;
  choice->simple = named[2] != exclude;
  return true;
}

}  // namespace

ProtocolChoice parseProtocols(const std::string& value, std::string* problem) {
  problem->clear();
  // NCCL also takes entries for one collective ("LL,Simple;allreduce:^LL"),
  // separated by semicolons: Chorus uses the entry without a collective and
  // says that the others are ignored.
  std::string global;
  bool perCollective = false;
  for (size_t start = 0; start <= value.size();) {
    size_t end = value.find(';', start);
    if (end == std::string::npos) end = value.size();
    const std::string entry = value.substr(start, end - start);
    start = end + 1;
    if (entry.find(':') != std::string::npos) perCollective = true;
    else if (!entry.empty()) global = entry;
  }
  ProtocolChoice choice;
  std::string why;
  if (!parseList(global, &choice, &why)) {
    *problem = "NCCL_PROTO=" + value + ": " + why + "; using LL and Simple";
    return ProtocolChoice{};
  }
  if (!choice.ll && !choice.simple) {
    *problem = "NCCL_PROTO=" + value +
               " leaves neither LL nor Simple (LL128 is not built); using LL and Simple";
    return ProtocolChoice{};
  }
  if (perCollective)
    *problem = "NCCL_PROTO=" + value + ": entries for one collective are ignored; using " +
               protocolNames(choice) + " for every collective";
  return choice;
}

ProtocolChoice protocolsFromSettings() {
  std::string problem;
  const ProtocolChoice choice = parseProtocols(settingString("NCCL_PROTO"), &problem);
  if (!problem.empty()) WARN("%s", problem.c_str());
  return choice;
}

std::string protocolNames(const ProtocolChoice& choice) {
  if (choice.ll && choice.simple) return "LL,Simple";
  return choice.ll ? "LL" : "Simple";
}

}  // namespace chorus
