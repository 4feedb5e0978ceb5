#pragma once

#include "base/result.h"

#include <QList>
#include <QString>
#include <QStringList>

namespace ifs {

struct TransformStep;

/// A Python literal as written in a torchvision transform call: None, bool, int, float, string,
/// tuple, list, an `InterpolationMode.X` reference, or a nested transform call (the transforms of
/// `RandomApply([...])`, `RandomChoice`, `RandomOrder`, and a `Compose([...])` inside them).
struct TransformValue
{
    enum class Kind { None, Bool, Int, Float, String, Tuple, List, Enum, Call, Code };

    Kind kind = Kind::None;
    bool boolValue = false;
    qint64 intValue = 0;
    double floatValue = 0.0;
    /// The string for Kind::String; for Kind::Enum the InterpolationMode member ("BILINEAR"), or
    /// another enum qualified ("AutoAugmentPolicy.CIFAR10", "torch.float32"); the class name
    /// (e.g. "ColorJitter", or "Compose") for Kind::Call; for Kind::Code the Python source of the
    /// arguments of a call the engine cannot read (`Lambda(lambda x: x / 2)`), kept as written.
    QString text;
    /// The elements for Kind::Tuple and Kind::List; the arguments' values for Kind::Call.
    QList<TransformValue> items;
    /// Kind::Call: each argument's keyword, parallel to items (empty for a positional one).
    QStringList keywords;

    /// Python's None.
    static TransformValue none();
    /// Python's True or False.
    static TransformValue boolean(bool value);
    /// A Python int (limited to 64 bits).
    static TransformValue integer(qint64 value);
    /// A Python float.
    static TransformValue real(double value);
    /// A Python str.
    static TransformValue string(const QString &value);
    /// A Python tuple.
    static TransformValue tuple(const QList<TransformValue> &items);
    /// A Python list.
    static TransformValue list(const QList<TransformValue> &items);
    /// `InterpolationMode.<member>`, e.g. member "BICUBIC".
    static TransformValue interpolation(const QString &member);
    /// Python source kept as written (Kind::Code).
    static TransformValue code(const QString &source);
    /// A nested transform call, e.g. the `ColorJitter(0.4)` in `RandomApply([ColorJitter(0.4)])`.
    static TransformValue call(const TransformStep &step);
    /// Kind::Call as the step it calls (name and arguments); an empty step for other kinds.
    TransformStep toStep() const;

    /// Structural equality; an int never equals a float (1 != 1.0 here, as their reprs differ).
    friend bool operator==(const TransformValue &a, const TransformValue &b);
};

/// One argument of a call: positional when keyword is empty.
struct TransformArgument
{
    QString keyword;
    TransformValue value;

    friend bool operator==(const TransformArgument &a, const TransformArgument &b) = default;
};

/// One transform call, e.g. `RandomResizedCrop(224, scale=(0.5, 1.0))`.
struct TransformStep
{
    /// The class name without module prefix, e.g. "RandomResizedCrop".
    QString name;
    QList<TransformArgument> args;

    friend bool operator==(const TransformStep &a, const TransformStep &b) = default;
};

/// The transforms of a `transforms.Compose([...])`, in order.
struct TransformPipeline
{
    QList<TransformStep> steps;

    friend bool operator==(const TransformPipeline &a, const TransformPipeline &b) = default;
};

/// How the editor's parameter form edits a parameter when the default's type does not say it.
struct ParameterHint
{
    enum class Editor {
        Auto, ///< by the default's type: check box, spin box in [0, 1], (min, max) pair, literal
        Choice, ///< a combo box of `choices` for a string value, e.g. padding_mode
        OptionalBool, ///< a combo box of None, True and False
        Integer, ///< a spin box from `minimum` to `maximum` for an int value
    };
    Editor editor = Editor::Auto;
    QStringList choices; ///< Choice: the strings offered
    int minimum = 0; ///< Integer
    int maximum = 0; ///< Integer
};

/// One parameter of a transform's constructor.
struct TransformParameter
{
    QString name;
    /// True when the parameter has no default.
    bool required = false;
    /// The default value when not required.
    TransformValue defaultValue;
    /// What the parameter form shows for it (the signature itself ignores it).
    ParameterHint hint;
};

/// A transform's constructor signature as in torchvision 0.14.
struct TransformSignature
{
    QString name;
    QList<TransformParameter> parameters;
};

/// The transforms we know, with their torchvision 0.14 signatures (from the registry,
/// transformregistry.h, in its order).
const QList<TransformSignature> &knownTransforms();

/// The signature of the transform called name, or nullptr when unknown.
const TransformSignature *findTransform(const QString &name);

/// Parses a torchvision pipeline as written in Python: `transforms.Compose([...])`,
/// `T.Compose([...])`, `Compose([...])`, a bare list, or a single transform. Arguments are bound
/// to the signature table and normalized: required parameters positional, the rest keyword
/// arguments in signature order, arguments equal to their default dropped. Errors name the line
/// and column and quote the line with a caret under the spot.
Result<TransformPipeline> parseTransforms(const QString &source);

/// Binds a step's arguments to its signature and normalizes them as parseTransforms() does,
/// nested calls in its arguments too (a nested `Compose(transforms)` keeps its one list).
/// Fails for unknown transforms and bad arguments.
Result<TransformStep> normalizeStep(const TransformStep &step);

/// Prints value as a Python literal that Python reads back identically (floats in repr()'s
/// shortest round-trip form, enums as `transforms.InterpolationMode.X`).
QString toPythonLiteral(const TransformValue &value);

/// Prints the pipeline as canonical Python:
/// `transforms.Compose([\n    transforms.Resize(256),\n])`. parseTransforms() of the result
/// gives back the (normalized) pipeline.
QString toTorchvisionSource(const TransformPipeline &pipeline);

} // namespace ifs
