// docs/settings.md and the settings table (src/common/settings.cc) agree:
// every setting has a row in the document with its default and its doc string
// copied exactly, and every row of the document is a setting that exists.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/settings.h"

namespace chorus {
namespace {

const char kDocsPath[] = CHORUS_SOURCE_DIR "/docs/settings.md";

std::vector<std::string> readLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

std::vector<Setting> settings() {
  int count = 0;
  const Setting* table = allSettings(&count);
  return std::vector<Setting>(table, table + count);
}

// A table row of docs/settings.md starts with "| `NAME` |".
std::string rowPrefix(const std::string& name) { return "| `" + name + "` |"; }

// Markdown needs a | inside a table cell written as \|.
std::string escapeForTable(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

TEST(SettingsDocs, TableIsNotEmptyAndDocsFileExists) {
  EXPECT_FALSE(settings().empty());
  EXPECT_FALSE(readLines(kDocsPath).empty()) << kDocsPath << " is missing or empty";
}

TEST(SettingsDocs, EverySettingHasANonEmptyDocString) {
  for (const Setting& s : settings()) {
    ASSERT_NE(s.name, nullptr);
    ASSERT_NE(s.defaultValue, nullptr) << s.name;
    ASSERT_NE(s.doc, nullptr) << s.name;
    EXPECT_GT(std::string(s.doc).size(), 10u) << s.name << " has no real documentation";
  }
}

TEST(SettingsDocs, NamesAreUniqueAndKeepNcclOrChorusPrefix) {
  std::set<std::string> seen;
  for (const Setting& s : settings()) {
    std::string name = s.name;
    EXPECT_TRUE(seen.insert(name).second) << name << " appears twice in the table";
    EXPECT_TRUE(name.rfind("NCCL_", 0) == 0 || name.rfind("CHORUS_", 0) == 0)
        << name << ": NCCL's names are kept, Chorus's own start with CHORUS_";
  }
}

TEST(SettingsDocs, EverySettingHasARowWithItsDefaultAndDocString) {
  std::vector<std::string> lines = readLines(kDocsPath);
  for (const Setting& s : settings()) {
    const std::string prefix = rowPrefix(s.name);
    int rows = 0;
    for (const std::string& line : lines) {
      if (line.rfind(prefix, 0) != 0) continue;
      ++rows;
      const std::string defaultCell =
          s.defaultValue[0] == '\0' ? "(unset)" : "`" + std::string(s.defaultValue) + "`";
      EXPECT_NE(line.find("| " + defaultCell + " |"), std::string::npos)
          << s.name << ": the row in docs/settings.md should show the default " << defaultCell
          << "\n  row: " << line;
      EXPECT_NE(line.find(escapeForTable(s.doc)), std::string::npos)
          << s.name << ": the row in docs/settings.md should carry the doc string of "
          << "src/common/settings.cc exactly:\n  " << escapeForTable(s.doc) << "\n  row: " << line;
    }
    EXPECT_EQ(rows, 1) << s.name << " should have exactly one row \"" << prefix
                       << " ...\" in docs/settings.md";
  }
}

TEST(SettingsDocs, EveryDocumentedSettingExists) {
  std::set<std::string> known;
  for (const Setting& s : settings()) known.insert(s.name);
  for (const std::string& line : readLines(kDocsPath)) {
    if (line.rfind("| `", 0) != 0) continue;
    size_t end = line.find('`', 3);
    ASSERT_NE(end, std::string::npos) << line;
    std::string name = line.substr(3, end - 3);
    EXPECT_EQ(known.count(name), 1u)
        << "docs/settings.md documents " << name << ", which src/common/settings.cc does not have";
  }
}

}  // namespace
}  // namespace chorus
