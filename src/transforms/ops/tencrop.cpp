// TenCrop(size, vertical_flip=False): read, printed and exported, but not run: it makes a tuple of
// crops.
#include "transforms/ops/ops.h"
#include "transforms/transformop.h"

namespace ifs::ops {

namespace {

QString reason()
{
    return QStringLiteral(
        "it returns a tuple of ten crops, which a DataLoader only batches after a Lambda "
        "that stacks them (torch.stack), and a model must then average over the crops: "
        "not supported here; use CenterCrop for validation, or RandomCrop with "
        "RandomHorizontalFlip for training");
}

std::unique_ptr<PreparedOp> prepare(const OpArguments &)
{
    fail(reason());
}

} // namespace

const TransformDefinition &tenCrop()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("TenCrop"),
        .parameters
        = {req(QStringLiteral("size")), opt(QStringLiteral("vertical_flip"), V::boolean(false))},
        .description = QStringLiteral("FiveCrop and its flipped copy as ten crops: shown, not run"),
        .category = TransformCategory::SizeAndCrop,
        .random = false,
        .input = StepInput::Any,
        .prepare = prepare,
        .unsupported = reason(),
    };
    return definition;
}

} // namespace ifs::ops
