// Fuzz target: timer::TimerWheel (timer/timer_wheel.h) against a model.
//
// The input is a program over 16 entries: insert with a deadline (due,
// near, a cascade away, past the wheel's 2^36-tick range), cancel, advance
// by an amount of the same kinds, and fire callbacks that re-insert the
// fired entry or cancel another one. The model is a list of (entry,
// effective deadline, insertion number). Properties:
// - every fire is the model's earliest entry (deadline, then insertion
//   order), at now() == its deadline, and nothing due is left after
//   advance(); nothing fires early (clamped far deadlines included);
// - deadline() is max(requested, now()); size() and is_registered() agree
//   with the model;
// - next_expiration() is nullopt iff empty, else in [now(), earliest
//   deadline].
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <vector>

#include "tests/fuzz/byte_reader.h"
#include "timer/timer_wheel.h"

namespace {

using pollux::fuzz::ByteReader;
using pollux::timer::TimerEntry;
using pollux::timer::TimerWheel;

constexpr int kEntries = 16;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "timer_wheel_fuzz: %s\n", what);
  std::abort();
}

#define CHECK(cond)                                   \
  do {                                                \
    if (!(cond)) fail(#cond " (line " LINE_STR ")"); \
  } while (false)
#define LINE_STR2(x) #x
#define LINE_STR1(x) LINE_STR2(x)
#define LINE_STR LINE_STR1(__LINE__)

struct ModelEntry {
  int id;
  uint64_t deadline;
  uint64_t seq;
};

struct Harness {
  TimerWheel wheel;
  TimerEntry entries[kEntries];
  std::vector<ModelEntry> model;
  uint64_t seq = 0;

  explicit Harness(uint64_t start) : wheel(start) {}
  ~Harness() {
    wheel.clear();  // entries must not die registered
  }

  std::vector<ModelEntry>::iterator find(int id) {
    return std::find_if(model.begin(), model.end(), [&](const ModelEntry& m) { return m.id == id; });
  }

  void insert(int id, uint64_t deadline) {
    if (entries[id].is_registered()) {
      CHECK(find(id) != model.end());
      return;
    }
    CHECK(find(id) == model.end());
    wheel.insert(&entries[id], deadline);
    const uint64_t effective = std::max(deadline, wheel.now());
    CHECK(entries[id].deadline() == effective);
    CHECK(entries[id].is_registered());
    model.push_back({id, effective, seq++});
  }

  void cancel(int id) {
    wheel.cancel(&entries[id]);
    auto it = find(id);
    if (it != model.end()) model.erase(it);
    CHECK(!entries[id].is_registered());
  }

  std::vector<ModelEntry>::iterator earliest() {
    return std::min_element(model.begin(), model.end(), [](const ModelEntry& a, const ModelEntry& b) {
      return a.deadline != b.deadline ? a.deadline < b.deadline : a.seq < b.seq;
    });
  }

  void check_state() {
    CHECK(wheel.size() == model.size());
    for (int i = 0; i < kEntries; ++i) {
      CHECK(entries[i].is_registered() == (find(i) != model.end()));
    }
    const std::optional<uint64_t> next = wheel.next_expiration();
    if (model.empty()) {
      CHECK(!next.has_value());
    } else {
      CHECK(next.has_value());
      CHECK(*next >= wheel.now());
      CHECK(*next <= earliest()->deadline);
    }
  }
};

// A tick offset of one of the kinds the wheel treats differently.
uint64_t offset(ByteReader& in) {
  const uint8_t kind = in.byte();
  switch (kind % 8) {
    case 0:
      return 0;
    case 1:
      return in.byte() % 64;  // level 0
    case 2:
      return in.bytes(2);  // levels 0..2
    case 3:
      return in.bytes(4);  // levels up to 5
    case 4:
      return uint64_t{64} << (6 * (in.byte() % 6));  // exactly a level boundary
    case 5:
      return TimerWheel::kMaxSpan - 1 - in.byte() % 4;  // the range's end
    case 6:
      return TimerWheel::kMaxSpan + in.bytes(2);  // clamped
    default:
      return in.bytes(5) + (static_cast<uint64_t>(in.byte() % 4) << 36);  // anything, up to 4 spans
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteReader in(data, size);
  // Start anywhere (ticks stay far below 2^63 with at most a few hundred
  // advances of at most 2^38 each).
  Harness h(in.bytes(5));
  int ops = 0;
  while (!in.empty() && ops++ < 512) {
    const uint8_t op = in.byte();
    const int id = (op >> 3) % kEntries;
    switch (op % 5) {
      case 0:
      case 1: {
        // Deadlines in the past are also allowed (fire at the next advance).
        const bool past = (in.byte() & 7) == 0;
        const uint64_t off = offset(in);
        const uint64_t now = h.wheel.now();
        h.insert(id, past ? (off > now ? 0 : now - off) : now + off);
        break;
      }
      case 2:
        h.cancel(id);
        break;
      case 3:
      case 4: {
        const uint64_t to = h.wheel.now() + offset(in);
        // What the fire callbacks do: 0 nothing, 1 re-insert the fired entry
        // `again` ticks later (0: due in this same call), 2 cancel entry
        // `other`, 3 insert entry `other` `again` ticks after now().
        const uint8_t action = in.byte();
        const uint64_t again = in.byte() % 3 == 0 ? 0 : in.byte();
        const int other = in.byte() % kEntries;
        int fired = 0;
        h.wheel.advance(to, [&](TimerEntry* e) {
          const int fid = static_cast<int>(e - h.entries);
          CHECK(fid >= 0 && fid < kEntries);
          CHECK(!e->is_registered());
          CHECK(!h.model.empty());
          auto first = h.earliest();
          CHECK(first->id == fid);
          CHECK(first->deadline == e->deadline());
          CHECK(h.wheel.now() == e->deadline());
          CHECK(e->deadline() <= to);
          h.model.erase(first);
          // Bounded: a re-inserting callback could otherwise fire forever at
          // one tick.
          if (++fired > 64) return;
          switch (action % 4) {
            case 1:
              h.insert(fid, h.wheel.now() + again);
              break;
            case 2:
              h.cancel(other);
              break;
            case 3:
              h.insert(other, h.wheel.now() + again);
              break;
            default:
              break;
          }
        });
        CHECK(h.wheel.now() == to);
        for (const ModelEntry& m : h.model) CHECK(m.deadline > to);
        break;
      }
    }
    h.check_state();
  }
  return 0;
}
