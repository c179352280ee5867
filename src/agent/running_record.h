// The definition an instance was started with (RunningDefinition) as a
// small JSON file in the node's runtime directory, beside the pid files:
// written when a start or reload succeeds, removed when a stop does, read
// when a probe finds the instance. A file that does not parse (a newer
// format, a hand edit) reads as unknown, never as half a definition.
#pragma once

#include <istream>
#include <optional>
#include <string>

#include "agent/operation.h"

namespace bulwark {

std::string encode_running(const RunningDefinition& running);
std::optional<RunningDefinition> decode_running(const std::string& text);
// The rest of `in` (the file at `path`) decoded; nothing there reads as
// unknown, and a record that does not decode is logged and unknown too.
std::optional<RunningDefinition> read_running(std::istream& in, const std::string& path);

}  // namespace bulwark
