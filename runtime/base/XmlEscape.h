//===- XmlEscape.h - text inside an SVG or XML document ---------*- C++ -*-===//

#ifndef MOERT_BASE_XMLESCAPE_H
#define MOERT_BASE_XMLESCAPE_H

#include <string>

namespace moert {

/// `text` with the characters markup gives meaning to escaped.
inline std::string escapeXml(const std::string &text) {
  std::string out;
  for (char c : text)
    out += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;"
                                                            : std::string(1, c);
  return out;
}

} // namespace moert

#endif // MOERT_BASE_XMLESCAPE_H
