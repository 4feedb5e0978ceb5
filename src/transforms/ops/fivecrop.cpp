// FiveCrop(size): read, printed and exported, but not run: it makes a tuple of crops.
#include "transforms/ops/ops.h"
#include "transforms/transformop.h"

namespace ifs::ops {

namespace {

QString reason()
{
    return QStringLiteral(
        "it returns a tuple of five crops, which a DataLoader only batches after a Lambda "
        "that stacks them (torch.stack), and a model must then average over the crops: "
        "not supported here; use CenterCrop for validation, or RandomCrop for training");
}

std::unique_ptr<PreparedOp> prepare(const OpArguments &)
{
    fail(reason());
}

} // namespace

const TransformDefinition &fiveCrop()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("FiveCrop"),
        .parameters = {req(QStringLiteral("size"))},
        .description
        = QStringLiteral("The four corners and the centre as five crops: shown, not run"),
        .category = TransformCategory::SizeAndCrop,
        .random = false,
        .input = StepInput::Any,
        .prepare = prepare,
        .unsupported = reason(),
    };
    return definition;
}

} // namespace ifs::ops
