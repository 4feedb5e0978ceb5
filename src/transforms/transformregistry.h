#pragma once

// The transforms the engine knows, one TransformDefinition each. A transform is one unit: its
// file under ops/ holds the signature, the description and menu category, the form hints, the
// argument checks, the pixel code and the advice hooks, and ops/ops.h lists it once. Everything
// that knows transforms by name asks here: the parser (signatures), the engine (prepare, apply),
// the advice (review hooks) and the editor (menu, descriptions, new steps, form hints).

#include "transforms/transformspec.h"

#include <QList>
#include <QSize>
#include <QString>

#include <memory>

namespace ifs {

namespace ops {
class OpArguments;
class PreparedOp;
struct AdviceWalk;
} // namespace ops

/// The sections of the Add Step menu, in menu order.
enum class TransformCategory {
    SizeAndCrop,
    FlipAndGeometry,
    ColourAndBlur,
    Tensor,
    Combine, ///< containers of other transforms: RandomApply, RandomChoice, RandomOrder
    Policies, ///< augmentation policies: AutoAugment, RandAugment, TrivialAugmentWide, AugMix
};

/// Every category, in menu order.
QList<TransformCategory> transformCategories();

/// The category's title for people, e.g. "Size and crop".
QString transformCategoryTitle(TransformCategory category);

/// What a transform takes. The engine checks it before the step runs and refuses the other kind
/// with one message for all steps (torchvision's tensor code resamples differently, or raises).
enum class StepInput {
    Any, ///< PIL images and tensors alike (or the step checks for itself)
    Image, ///< PIL images only: must come before ToTensor
    Tensor, ///< tensors only: must come after ToTensor
};

/// What the arguments of a newly added step may depend on: the dataset's images.
struct DatasetHints
{
    QSize typicalSize; ///< the images' most common size; invalid when unknown
    bool gray = false; ///< the images are grayscale

    /// The side that new crops default to: the images' shorter side when it is at most 64
    /// pixels (CIFAR, MNIST), else 224 (ImageNet's).
    int side() const;
};

/// One torchvision transform: what the parser, the engine, the advice and the editor need to
/// know about it. Written once per transform (ops/<name>.cpp) as a designated initializer.
struct TransformDefinition
{
    /// Checks the arguments as torchvision's constructor does and returns the prepared step;
    /// throws ops::StepError with a message that says what is wrong.
    using PrepareFn = std::unique_ptr<ops::PreparedOp> (*)(const ops::OpArguments &arguments);
    /// Looks at the step at `index` of a pipeline under review: adds findings and updates what
    /// the walk knows (size, channels, tensor or image).
    using ReviewFn = void (*)(ops::AdviceWalk &walk, int index, const TransformStep &step);
    /// The arguments a newly added step starts with (before normalizeStep()).
    using NewStepFn = QList<TransformArgument> (*)(const DatasetHints &hints);

    /// The class name, e.g. "RandomResizedCrop".
    QString name;
    /// The constructor's parameters as in torchvision 0.14, with defaults and form hints.
    QList<TransformParameter> parameters;
    /// One line saying what it does, for menus and tooltips.
    QString description;
    TransformCategory category = TransformCategory::SizeAndCrop;
    /// Whether running it draws random numbers.
    bool random = false;
    StepInput input = StepInput::Any;
    PrepareFn prepare = nullptr; ///< required
    ReviewFn review = nullptr; ///< optional: no findings, and the walk's state is unchanged
    NewStepFn newStep = nullptr; ///< optional: no arguments beyond neutral required ones
    /// Non-empty for a transform the engine reads but cannot reproduce (a Lambda's Python code,
    /// AugMix's tensor kernels): why, and what to do instead. compile() refuses it with this
    /// message unless told to skip it (a preview), and the advice says it.
    QString unsupported{};
    /// Non-empty for a transform that runs in a preview but cannot feed training (FiveCrop's
    /// tuple): why. compile() refuses it unless told to skip what training cannot run.
    QString previewOnly{};
};

/// Every transform, in the order of ops/ops.h (the signature table's order).
const QList<const TransformDefinition *> &transformDefinitions();

/// The transform called name, or nullptr when unknown.
const TransformDefinition *findDefinition(const QString &name);

/// One line saying what a transform does, for menus and tooltips; empty when unknown.
QString transformDescription(const QString &name);

/// Whether a transform draws random numbers (unknown names: whether they start with "Random").
bool isRandomTransform(const QString &name);

/// A new step of the transform called name, as the editor's Add Step makes it: the transform's
/// own starting arguments for these images, neutral values (1) for any other required parameter,
/// normalized (normalizeStep()). Unknown names give a step without arguments.
TransformStep newTransformStep(const QString &name, const DatasetHints &hints);

} // namespace ifs
