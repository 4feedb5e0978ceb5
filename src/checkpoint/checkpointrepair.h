#pragma once

#include "base/result.h"
#include "checkpoint/checkpointvalue.h"

#include <QList>
#include <QString>
#include <QStringList>

#include <utility>
#include <variant>

/// Repairing checkpoints for load_state_dict: finding the state dict inside a checkpoint,
/// previewable key and tensor operations on it, a load report against the keys a model expects,
/// an automatic proposal of lossless renames, and a diff of two state dicts. Pure data work on
/// checkpointvalue.h's Values: no libtorch, so the CLI and the GUI share it.
namespace ifs::ckpt {

/// The str keys from a checkpoint's root to a nested value: {"state_dict"}, {"model", "ema"}.
/// Empty: the root itself.
using KeyPath = QStringList;

/// How messages and the UI name a place in a checkpoint: `root["model"]["ema"]`.
QString keyPathText(const KeyPath &path);

// ------------------------------------------------------------------------------------------------
// Finding the state dicts

/// A dict of tensors inside a checkpoint: where it is and what it holds.
struct StateDictCandidate
{
    KeyPath path;
    int tensorCount = 0; ///< entries with a str key and a tensor value
    int otherCount = 0; ///< other entries (non-tensor values, non-str keys)
    qint64 elementCount = 0; ///< elements of those tensors: parameters and buffers
};

/// Every Dict or OrderedDict in `root` that holds at least one tensor under a str key, reached
/// through str keys only (so optimizer state, keyed by int, and lists are not searched): the root
/// itself for a bare state dict, `state_dict` of Lightning, `model_state_dict`, `model`, `net`,
/// `ema`, `modelA_state_dict`, nested ones. The most likely model state dict comes first: most
/// tensors first; on a tie the usual names (`state_dict`, `model`, ...) before other names, and
/// EMA copies last; then the order of the checkpoint.
QList<StateDictCandidate> findStateDicts(const Value &root);

/// The value at `path` in `root`. The error names the first key that is absent or the first
/// value that is not a dict, e.g. “root["model"] has no key “ema” (its keys: “epoch”, ...)”.
Result<Value> valueAt(const Value &root, const KeyPath &path);

// ------------------------------------------------------------------------------------------------
// Operations. Each is a small value type; describe() gives the line the UI and the CLI show.
// Key operations act on the str keys of the current dict; other keys stay as they are.

/// Removes `prefix` from the keys that start with it, and only from those: "module." that
/// DataParallel and DistributedDataParallel add, "_orig_mod." of torch.compile, "model." of a
/// Lightning module, stacked ones such as "_orig_mod.module.". The module names of `_metadata`
/// follow (the wrapper's own entry is dropped). A stripped name that another key has is an
/// error, unless `keepClashing`: then such keys keep the prefix and the report names them.
struct StripPrefix
{
    QString prefix;
    bool keepClashing = false;
    QString description() const;
    bool operator==(const StripPrefix &) const = default;
};

/// Puts `prefix` in front of every key ("module." to load into a DataParallel model); the module
/// names of `_metadata` follow.
struct AddPrefix
{
    QString prefix;
    QString description() const;
    bool operator==(const AddPrefix &) const = default;
};

/// Python's `re.sub(pattern, replacement, key)` on every key (Perl syntax, QRegularExpression):
/// every match is replaced; the replacement may use `\1`..`\99`, `\g<1>`, `\g<name>` and `\\`.
/// Keys that do not match stay. `_metadata` is dropped when a key changes (its module names can
/// no longer be derived), with a note.
struct RenameRegex
{
    QString pattern;
    QString replacement;
    QString description() const;
    bool operator==(const RenameRegex &) const = default;
};

/// Renames exactly these keys, all at once (a swap is fine); keys not listed stay, listed keys
/// that are absent get a note. `_metadata` is dropped when a key changes, as for RenameRegex.
struct RenameKeys
{
    QList<std::pair<QString, QString>> renames; ///< old key → new key
    QString description() const;
    bool operator==(const RenameKeys &) const = default;
};

/// Replaces the current value with the dict at `path` inside it: the model's state dict of a
/// training checkpoint (`{"state_dict"}`, `{"model", "ema"}`).
struct ExtractDict
{
    KeyPath path;
    QString description() const;
    bool operator==(const ExtractDict &) const = default;
};

/// Drops the entries whose key matches any of the shell patterns (`fc.*`, `classifier.*`,
/// `*.num_batches_tracked`), with Python's fnmatch.fnmatchcase semantics: `*` (dots included),
/// `?`, `[abc]`, `[!a-z]`. The only lossy operation: its report lists what went.
struct DropKeys
{
    QStringList patterns;
    QString description() const;
    bool operator==(const DropKeys &) const = default;
};

/// Converts the storages of floating point tensors to `to` (float32, float64, float16 or
/// bfloat16), as torch's `tensor.to(dtype)` on the CPU does, bit for bit (torch 1.13): round to
/// nearest even, subnormals and overflow to infinity included; a NaN becomes float16's
/// sign|0x7E00 and bfloat16's 0xFFFF (torch's vectorised kernel; 0x7FC0 from float16, which
/// takes its scalar path); float64 to float16 or bfloat16 rounds through float32 as torch does.
/// Integer, bool and complex tensors stay as they are. Applies to every tensor in the current
/// value (nested too). Tensors that share a storage share the converted one.
struct CastFloat
{
    DType to = DType::Float16;
    QList<DType> from; ///< the types to convert; empty: every other real floating type
    QString description() const;
    bool operator==(const CastFloat &) const = default;
};

/// Changes the location tags of storages (where torch.load puts them without a map_location):
/// all to `all` when set ("cpu", "cuda:0"), otherwise by `mapping` ("cuda:1" → "cuda:0"; exact
/// tags, so "cuda" and "cuda:0" differ). Every tensor in the current value, nested too; sharing
/// is kept.
struct MapDevices
{
    QString all;
    QList<std::pair<QString, QString>> mapping;
    QString description() const;
    bool operator==(const MapDevices &) const = default;
};

/// One repair step.
using Operation = std::variant<StripPrefix, AddPrefix, RenameRegex, RenameKeys, ExtractDict,
                               DropKeys, CastFloat, MapDevices>;

/// The operation's description: “Strip the prefix “module.””.
QString describe(const Operation &operation);

/// What one operation did.
struct OperationReport
{
    QString description; ///< describe() of the operation
    QString summary; ///< one line: “Stripped “module.” from 122 of 122 keys”
    int changed = 0; ///< keys renamed or dropped, tensors cast, storages moved
    QList<std::pair<QString, QString>> renamed; ///< old key → new key, in order
    QStringList dropped; ///< keys dropped, in order
    QStringList notes; ///< side effects: keys left alone, `_metadata` renamed or dropped
};

/// A repaired checkpoint and how it came about.
struct RepairResult
{
    Value value; ///< the whole repaired value; the input is never modified
    QList<OperationReport> steps;
};

/// Applies `operations` in order to the dict at `at` inside `root` and returns `root` with that
/// dict replaced (everything else kept: epoch, optimizer, ...). With an empty `at` the
/// operations act on `root`, and an ExtractDict makes the result the extracted dict. Keys keep
/// their order; an OrderedDict stays one, with its `_metadata` handled as each operation says.
/// Fails without a partial result when an operation cannot apply: a rename would make two keys
/// one (the message names both), a key operation meets a value that is not a dict, a pattern or
/// device is invalid.
Result<RepairResult> applyOperations(const Value &root, const QList<Operation> &operations,
                                     const KeyPath &at = {});

/// What applyOperations() would do, without converting tensor data: the reports and the keys of
/// the dict before and after (str keys as they are, other keys as Python writes them).
struct RepairPreview
{
    QStringList keysBefore;
    QStringList keysAfter;
    QList<OperationReport> steps;
};

/// applyOperations() as a dry run, for the UI's live preview; fails as applyOperations() would.
Result<RepairPreview> previewOperations(const Value &root, const QList<Operation> &operations,
                                        const KeyPath &at = {});

// ------------------------------------------------------------------------------------------------
// Load report

/// A tensor that a model expects: its state_dict() key, shape and type.
struct KeySpec
{
    QString key;
    QList<qint64> shape;
    DType dtype = DType::Float32;
    bool operator==(const KeySpec &) const = default;
};

/// The keys a model expects, in its state_dict() order.
using TargetSpec = QList<KeySpec>;

/// The tensors of a state dict as a target (another checkpoint of the model to load into).
TargetSpec targetFromStateDict(const Value &stateDict);

/// A key present on both sides that load_state_dict cannot copy (different shape, or not a
/// tensor in the checkpoint), or copies with a conversion (different dtype).
struct KeyMismatch
{
    QString key;
    QString sourceType; ///< Python's type of the checkpoint's value: "torch.Tensor", "int"
    QList<qint64> sourceShape; ///< empty unless the value is a tensor
    DType sourceDType = DType::Float32;
    QList<qint64> targetShape;
    DType targetDType = DType::Float32;
};

/// Keys of one kind (missing, unexpected, mismatched) under one module prefix.
struct KeyGroup
{
    /// A glob that names the group: "layer4.*" (every key under it is of this kind), or the
    /// immediate module "layer4.1.bn1.*" when only some are, or the key itself for a single key
    /// or a key without a module.
    QString pattern;
    QStringList keys;
    int total = 0; ///< keys under the pattern on that side (model or checkpoint)
    /// “layer4.*: 30 missing”, “layer4.1.bn1.*: 2 of 5 missing”, “fc.weight: missing”.
    QString text(const QString &kind) const;
};

/// How `model.load_state_dict(checkpoint)` would go, key by key.
struct LoadReport
{
    QStringList matched; ///< on both sides with the same shape, in the model's order
    QStringList missing; ///< the model's keys the checkpoint lacks, in the model's order
    QStringList unexpected; ///< the checkpoint's keys the model lacks, in the checkpoint's order
    /// Missing `num_batches_tracked` buffers that BatchNorm adds itself, because the checkpoint's
    /// `_metadata` gives the module no version ≥ 2 (old torchvision files): not in `missing`.
    QStringList filledByTorch;
    QList<KeyMismatch> mismatched; ///< on both sides, not copyable; the model's order
    QList<KeyMismatch> dtypeDiffers; ///< matched, with another dtype (load_state_dict converts)
    QList<KeyGroup> missingGroups;
    QList<KeyGroup> unexpectedGroups;
    QList<KeyGroup> mismatchedGroups;
    int targetCount = 0; ///< keys the model expects
    int sourceCount = 0; ///< keys of the checkpoint
    qint64 targetElements = 0; ///< elements of the model's tensors, buffers included
    qint64 matchedElements = 0; ///< elements of the matched ones
    /// One paragraph: counts, coverage, the groups that do not match and what load_state_dict
    /// with strict=True and strict=False would do.
    QString summary;

    /// Whether load_state_dict(strict=True) succeeds: nothing missing, unexpected or mismatched.
    bool loadsStrictly() const;
};

/// Compares a state dict (a Dict or OrderedDict of str → tensor; anything else has no keys) with
/// the keys a model expects, as load_state_dict(strict=True) would, but with everything it finds.
LoadReport loadReport(const Value &stateDict, const TargetSpec &target);

// ------------------------------------------------------------------------------------------------
// Automatic proposal

/// An operation that would lose tensors, offered with its reason rather than applied.
struct RepairSuggestion
{
    Operation operation;
    QString reason;
};

/// Lossless operations that make a checkpoint fit a model best.
struct RepairProposal
{
    KeyPath path; ///< the state dict in the checkpoint that the operations fit
    QList<Operation> operations; ///< renames only; apply with applyOperations(root, ops, path)
    QList<RepairSuggestion> suggestions; ///< lossy steps for what still does not fit
    LoadReport before; ///< of the dict at `path` as it is
    LoadReport after; ///< once the operations are applied
    QString summary; ///< one line for the UI and the CLI
};

/// Finds the renames that maximise the keys matching `target` (same key, same shape): for each
/// state dict of findStateDicts(), greedily the prefix strip (keeping the keys whose stripped
/// names are taken, when there are such), prefix add or prefix replacement (a prefix of at least
/// two unmatched keys moved to a module prefix that no checkpoint key uses yet) that gains the
/// most matches without unmatching any; then longest-suffix matching (a checkpoint key and a model
/// key of equal shape that share at least their last two components, where each is the other's
/// only best match). Never proposes a rename that merges keys or drops a tensor; deterministic.
/// Suggests dropping the keys whose shapes still differ (a replaced head) and the unexpected
/// ones. Fails only when `checkpoint` holds no dict of tensors.
Result<RepairProposal> proposeRepair(const Value &checkpoint, const TargetSpec &target);

/// A state dict made to fit a model: proposeRepair()'s lossless renames applied to the state dict
/// it chose. `proposal.after` is the load report of `stateDict`.
struct FittedStateDict
{
    Value stateDict;
    RepairProposal proposal;
};

/// proposeRepair(), then its operations applied at its path; fails as proposeRepair() does.
Result<FittedStateDict> fitStateDict(const Value &checkpoint, const TargetSpec &target);

// ------------------------------------------------------------------------------------------------
// Diff

/// One key whose tensors both state dicts hold.
struct TensorDifference
{
    QString key;
    QList<qint64> shapeA;
    QList<qint64> shapeB;
    DType dtypeA = DType::Float32;
    DType dtypeB = DType::Float32;
    bool identical = false; ///< same dtype, shape and element bytes
    double maxAbsDiff = 0.0; ///< over the elements as numbers (equal shapes only); NaN = NaN here
    qint64 nanMismatches = 0; ///< elements that are NaN on one side only
};

/// What differs between two state dicts, for `ifstudio-cli diff`.
struct StateDictDiff
{
    QStringList onlyInA;
    QStringList onlyInB;
    QList<TensorDifference> shapeDiffers; ///< common tensors of different shapes
    QList<TensorDifference> compared; ///< common tensors of equal shape, in A's order
    QStringList dtypeDiffers; ///< keys of `compared` with different dtypes
    QStringList otherDiffers; ///< common keys with unequal non-tensor values (or one not a tensor)
    int identicalCount = 0; ///< tensors of `compared` that are bit-identical
    double maxAbsDiff = 0.0; ///< the largest over `compared`
    QString summary; ///< one paragraph

    /// No key only on one side, and every common value identical.
    bool identical() const;
};

/// Compares two state dicts key by key; fails when one is not a dict or a tensor's view does not
/// fit its storage (the message names the key).
Result<StateDictDiff> diffStateDicts(const Value &a, const Value &b);

} // namespace ifs::ckpt
