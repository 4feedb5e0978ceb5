#include "checkpoint/checkpointwalk.h"

#include <deque>
#include <vector>

namespace ifs::ckpt {

namespace {

struct Pending
{
    const Value *value;
    WalkStep step;
    size_t depth;
};

/// Queues the children of `value` so that they come off the back of `pending` in order.
void pushChildren(const Value &value, size_t depth, const WalkOptions &options,
                  std::vector<Pending> &pending, std::deque<Value> &kept)
{
    using Kind = WalkStep::Kind;
    switch (value.kind()) {
    case Value::Kind::Tuple:
    case Value::Kind::List: {
        const QList<Value> &items = value.items();
        for (qsizetype i = items.size() - 1; i >= 0; --i)
            pending.push_back({&items[i], {Kind::Item, i, nullptr}, depth});
        break;
    }
    case Value::Kind::Dict:
    case Value::Kind::OrderedDict: {
        // Object args and states come by value; the deque keeps them in place.
        if (!value.state().isNone()) {
            kept.push_back(value.state());
            pending.push_back({&kept.back(), {Kind::DictState, 0, nullptr}, depth});
        }
        const Value::Entries &entries = value.entries();
        for (qsizetype i = entries.size() - 1; i >= 0; --i) {
            const Value *key = &entries[i].first;
            pending.push_back({&entries[i].second, {Kind::Entry, i, key}, depth});
            if (options.keys)
                pending.push_back({key, {Kind::Key, i, key}, depth});
        }
        break;
    }
    case Value::Kind::Object:
        if (!value.state().isNone()) {
            kept.push_back(value.state());
            pending.push_back({&kept.back(), {Kind::ObjectState, 0, nullptr}, depth});
        }
        if (!value.objectArgs().isNone()) {
            kept.push_back(value.objectArgs());
            pending.push_back({&kept.back(), {Kind::ObjectArgs, 0, nullptr}, depth});
        }
        break;
    default:
        break;
    }
}

} // namespace

bool walkValues(const Value &root, const Visitor &visit, const WalkOptions &options)
{
    std::vector<Pending> pending{{&root, {}, 0}};
    std::deque<Value> kept;
    // Depth first: when a value comes off the stack, `path` still holds its parent's path.
    std::vector<WalkStep> path;
    while (!pending.empty()) {
        const Pending next = pending.back();
        pending.pop_back();
        if (next.depth > 0) {
            path.resize(next.depth - 1);
            path.push_back(next.step);
        }
        switch (visit(WalkPath(path), *next.value)) {
        case WalkAction::Stop:
            return false;
        case WalkAction::SkipChildren:
            break;
        case WalkAction::Continue:
            pushChildren(*next.value, next.depth + 1, options, pending, kept);
            break;
        }
    }
    return true;
}

void forEachTensor(const Value &root, const std::function<void(WalkPath, const Tensor &)> &visit)
{
    walkValues(root, [&](WalkPath path, const Value &value) {
        if (value.isTensor())
            visit(path, value.toTensor());
        return WalkAction::Continue;
    });
}

} // namespace ifs::ckpt
