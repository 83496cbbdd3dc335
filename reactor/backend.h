// Backend: the I/O backend of one thread, as the runtime context names it.
// (Being filled in: the backend-neutral operation interface arrives with
// the backend seam; today IoUringDriver is the one backend.)
#ifndef POLLUX_REACTOR_BACKEND_H_
#define POLLUX_REACTOR_BACKEND_H_

#include "executor/driver.h"

namespace pollux::reactor {

class Backend : public Driver {};

}  // namespace pollux::reactor

#endif  // POLLUX_REACTOR_BACKEND_H_
