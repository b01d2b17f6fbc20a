#pragma once
// The WebSocket handlers: the candidate's terminal (bridged to the environment
// service's Attach stream, with the session's status alongside) and the
// status stream (WatchSession). Free of Boost.Beast: they talk to a WsPeer.
#include <memory>
#include <optional>
#include <string>

#include "gateway/backends.h"
#include "gateway/http.h"
#include "gateway/metrics.h"

namespace examiso::gateway {

std::shared_ptr<WsHandler> make_status_stream(Backends& backends, Metrics& metrics, const std::string& session_id);

// Decides a terminal WebSocket for an owner already authorized for status:
// 4005 while the session is not ready, 4006 once it has ended; a `ready`
// session is started; then the terminal access is authorized (and logged).
void open_terminal(Backends& backends, Metrics& metrics, const std::string& session_id, const std::string& user_id,
                   const std::string& client_ip, DecideWs decide);

// Decides a staff observer's WebSocket, already authorized (staff_view): a
// read-only view of a ready or running session's terminal.
void open_observer(Backends& backends, Metrics& metrics, const std::string& session_id, DecideWs decide);

// A client's message on the terminal WebSocket as the Attach stream takes it:
// input, or a resize (clamped to 1..1000); nullopt for anything else.
std::optional<v1::AttachRequest> terminal_message(const std::string& text);

// Valid UTF-8 for JSON text: a sequence cut at the end of `in` waits in
// `carry` for the next chunk; invalid bytes become U+FFFD.
std::string utf8_text(std::string& carry, std::string_view in);

}  // namespace examiso::gateway
