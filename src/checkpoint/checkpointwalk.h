#pragma once

// One walk over checkpoint values for everyone who looks inside them: the reader's storage list,
// the repair's counts and state-dict search, `ifstudio-cli inspect`, the Checkpoints workspace's
// totals. Depth first, in order, without recursion (a hostile file may nest deeply).

#include "checkpoint/checkpointvalue.h"

#include <functional>
#include <span>

namespace ifs::ckpt {

/// One step from a value to one of its children.
struct WalkStep
{
    enum class Kind : quint8 {
        Item, ///< item `index` of a Tuple or List
        Entry, ///< the value of entry `index` of a Dict or OrderedDict; `key` is its key
        Key, ///< the key of entry `index` itself (WalkOptions::keys)
        DictState, ///< an OrderedDict's BUILD state (its attributes, such as `_metadata`)
        ObjectArgs, ///< an Object's constructor arguments
        ObjectState, ///< an Object's BUILD state (an nn.Module's attributes)
    };
    Kind kind = Kind::Item;
    qsizetype index = 0;
    /// Entry and Key: the entry's key. Points into the walked tree: valid during the visit.
    const Value *key = nullptr;
};

/// The steps from the root to the value visited; empty for the root.
using WalkPath = std::span<const WalkStep>;

/// What the visitor wants next.
enum class WalkAction : quint8 {
    Continue, ///< into this value's children, then on
    SkipChildren, ///< on, without this value's children
    Stop, ///< nowhere: the walk ends
};

struct WalkOptions
{
    /// Visit dict keys too (a Key step before each Entry), for keys that hold tensors.
    bool keys = false;
};

using Visitor = std::function<WalkAction(WalkPath path, const Value &value)>;

/// Calls `visit` on `root` and every value under it, depth first in order: a Tuple's or List's
/// items; a Dict's entries (with WalkOptions::keys, each key before its value), then an
/// OrderedDict's state; an Object's args, then its state. States and args that are None are not
/// visited. Returns false when the visitor stopped the walk.
bool walkValues(const Value &root, const Visitor &visit, const WalkOptions &options = {});

/// Calls `visit` on every tensor under `root` (as walkValues() finds them) with its path.
void forEachTensor(const Value &root, const std::function<void(WalkPath, const Tensor &)> &visit);

} // namespace ifs::ckpt
