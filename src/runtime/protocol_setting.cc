#include "runtime/protocol_setting.h"

#include <strings.h>

#include "common/log.h"
#include "common/settings.h"

namespace chorus {

ProtocolChoice parseProtocols(const std::string& value, std::string* problem) {
  problem->clear();
  if (value.empty()) return ProtocolChoice{};
  const bool exclude = value[0] == '^';
  bool named[3] = {false, false, false};  // LL, LL128, Simple
  const char* const kNames[3] = {"LL", "LL128", "Simple"};
  size_t start = exclude ? 1 : 0;
  while (start <= value.size()) {
    size_t end = value.find(',', start);
    if (end == std::string::npos) end = value.size();
    const std::string name = value.substr(start, end - start);
    int which = -1;
    for (int p = 0; p < 3; ++p)
      if (strcasecmp(name.c_str(), kNames[p]) == 0) which = p;
    if (which < 0) {
      *problem = "NCCL_PROTO=" + value + ": \"" + name +
                 "\" is not a protocol (LL, LL128, Simple); using LL and Simple";
      return ProtocolChoice{};
    }
    named[which] = true;
    start = end + 1;
  }
  ProtocolChoice choice;
  choice.ll = named[0] != exclude;
  choice.simple = named[2] != exclude;
  if (!choice.ll && !choice.simple) {
    *problem = "NCCL_PROTO=" + value +
               " leaves neither LL nor Simple (LL128 is not built); using LL and Simple";
    return ProtocolChoice{};
  }
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
