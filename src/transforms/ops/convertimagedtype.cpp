// ConvertImageDtype(dtype): the engine's tensors are float32, so torch.float / torch.float32
// leaves them as they are; other dtypes are refused.
#include "transforms/ops/ops.h"
#include "transforms/transformop.h"

namespace ifs::ops {

namespace {

class ConvertImageDtype final : public PreparedOp
{
public:
    void apply(RunState &run) const override
    {
        run.trace->applied = false;
        run.trace->summary = QStringLiteral("already float32");
    }
};

std::unique_ptr<PreparedOp> prepare(const OpArguments &a)
{
    const V &dtype = a[u"dtype"];
    if (dtype.kind != V::Kind::Enum || !dtype.text.startsWith(u"torch."))
        fail(QStringLiteral("dtype must be a torch dtype such as torch.float, not %1")
                 .arg(toPythonLiteral(dtype)));
    if (dtype.text != u"torch.float" && dtype.text != u"torch.float32")
        fail(QStringLiteral("the engine's tensors are float32: only ConvertImageDtype(torch.float) "
                            "is supported, not %1")
                 .arg(dtype.text));
    return std::make_unique<ConvertImageDtype>();
}

QList<TransformArgument> newStep(const DatasetHints &)
{
    V dtype;
    dtype.kind = V::Kind::Enum;
    dtype.text = QStringLiteral("torch.float");
    return {positional(dtype)};
}

} // namespace

const TransformDefinition &convertImageDtype()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("ConvertImageDtype"),
        .parameters = {req(QStringLiteral("dtype"))},
        .description = QStringLiteral("Convert a tensor's dtype (float32 here)"),
        .category = TransformCategory::Tensor,
        .random = false,
        .input = StepInput::Tensor,
        .prepare = prepare,
        .newStep = newStep,
    };
    return definition;
}

} // namespace ifs::ops
