// PILToTensor(): read, printed and exported, but not run: it makes a uint8 tensor.
#include "transforms/ops/ops.h"
#include "transforms/transformop.h"

namespace ifs::ops {

namespace {

QString reason()
{
    return QStringLiteral(
        "it makes a uint8 tensor, which the engine does not carry: use ToTensor() "
        "(PILToTensor() then ConvertImageDtype(torch.float) gives exactly ToTensor's "
        "values)");
}

std::unique_ptr<PreparedOp> prepare(const OpArguments &)
{
    fail(reason());
}

} // namespace

const TransformDefinition &pilToTensor()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("PILToTensor"),
        .parameters = {},
        .description = QStringLiteral("PIL image to a uint8 tensor: use ToTensor here"),
        .category = TransformCategory::Tensor,
        .random = false,
        .input = StepInput::Any,
        .prepare = prepare,
        .unsupported = reason(),
    };
    return definition;
}

} // namespace ifs::ops
