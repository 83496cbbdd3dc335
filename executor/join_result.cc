#include "executor/join_result.h"

#include <exception>
#include <string>

#include "absl/strings/str_cat.h"

namespace pollux {

absl::Status JoinError::status() const {
  if (kind_ == Kind::kCancelled) {
    return absl::CancelledError("task was cancelled (aborted, or its executor shut down)");
  }
  try {
    std::rethrow_exception(exception_);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("task threw an exception: ", e.what()));
  } catch (...) {
    return absl::InternalError("task threw an exception that is not a std::exception");
  }
}

}  // namespace pollux
