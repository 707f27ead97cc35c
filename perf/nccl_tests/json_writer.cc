#include "json_writer.h"

#include <cmath>
#include <cstdio>

namespace perf {

void JsonWriter::prefix(const char* key) {
  if (!first_.empty()) {
    if (!first_.back()) out_ += ',';
    first_.back() = false;
  }
  if (key != nullptr) out_ += quote(key) + ':';
}

std::string JsonWriter::quote(const std::string& s) {
  std::string q = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': q += "\\\""; break;
      case '\\': q += "\\\\"; break;
      case '\n': q += "\\n"; break;
      case '\t': q += "\\t"; break;
      case '\r': q += "\\r"; break;
      default:
        if (c < 0x20) {
          char esc[8];
          snprintf(esc, sizeof esc, "\\u%04x", c);
          q += esc;
        } else {
          q += static_cast<char>(c);  // UTF-8 passes through
        }
    }
  }
  return q + '"';
}

JsonWriter& JsonWriter::beginObject(const char* key) {
  prefix(key);
  out_ += '{';
  first_.push_back(true);
  return *this;
}

JsonWriter& JsonWriter::endObject() {
  out_ += '}';
  first_.pop_back();
  return *this;
}

JsonWriter& JsonWriter::beginArray(const char* key) {
  prefix(key);
  out_ += '[';
  first_.push_back(true);
  return *this;
}

JsonWriter& JsonWriter::endArray() {
  out_ += ']';
  first_.pop_back();
  return *this;
}

JsonWriter& JsonWriter::value(const char* key, const std::string& s) {
  prefix(key);
  out_ += quote(s);
  return *this;
}

JsonWriter& JsonWriter::value(const char* key, double d) {
  prefix(key);
  if (!std::isfinite(d)) {
    out_ += "null";
    return *this;
  }
  char text[64];
  snprintf(text, sizeof text, "%.10g", d);
  out_ += text;
  return *this;
}

JsonWriter& JsonWriter::value(const char* key, long long n) {
  prefix(key);
  out_ += std::to_string(n);
  return *this;
}

JsonWriter& JsonWriter::boolean(const char* key, bool b) {
  prefix(key);
  out_ += b ? "true" : "false";
  return *this;
}

JsonWriter& JsonWriter::null(const char* key) {
  prefix(key);
  out_ += "null";
  return *this;
}

JsonWriter& JsonWriter::raw(const char* key, const std::string& json) {
  prefix(key);
  out_ += json;
  return *this;
}

}  // namespace perf
