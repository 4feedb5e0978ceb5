// TorchScript export: our nn::Module tree mirrored as a torch::jit::Module with the same tensors,
// its forward recorded by libtorch's tracer (as Python's torch.jit.trace does), saved with
// extra files. See exportkit.h.

#include "torch/export/exportkit.h"

#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/csrc/jit/serialization/import.h>

#include <sstream>

namespace ifs::tm {

namespace {

/// A TorchScript class name from a C++ type name: "torch::nn::Conv2dImpl" → "Conv2d",
/// "ifs::tm::(anonymous namespace)::ResNet<…>" → "ResNet".
std::string className(const std::string &cppName)
{
    std::string name = cppName.substr(0, cppName.find('<'));
    if (const size_t colon = name.rfind("::"); colon != std::string::npos)
        name = name.substr(colon + 2);
    if (name.size() > 4 && name.compare(name.size() - 4, 4, "Impl") == 0)
        name.resize(name.size() - 4);
    for (char &c : name) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_')
            c = '_';
    }
    return name.empty() || std::isdigit(static_cast<unsigned char>(name[0])) ? "Module" + name
                                                                             : name;
}

/// The jit::Module mirror of `module`: the same tensor objects (the tracer maps each tensor it
/// meets to an attribute by identity), `training`, and the children by name.
torch::jit::Module mirror(torch::nn::Module &module,
                          const std::shared_ptr<torch::jit::CompilationUnit> &cu)
{
    torch::jit::Module out(c10::QualifiedName("__torch__.ifstudio." + className(module.name())), cu,
                           /*shouldMangle=*/true);
    for (const auto &item : module.named_parameters(/*recurse=*/false)) {
        if (item.value().defined())
            out.register_parameter(item.key(), item.value(), /*is_buffer=*/false);
    }
    for (const auto &item : module.named_buffers(/*recurse=*/false)) {
        if (item.value().defined())
            out.register_buffer(item.key(), item.value());
    }
    out.register_attribute("training", c10::BoolType::get(), false);
    for (const auto &child : module.named_children())
        out.register_module(child.key(), mirror(*child.value(), cu));
    return out;
}

} // namespace

Result<torch::jit::Module> scriptNet(Net &net, const torch::Tensor &example,
                                     const QStringList &classes)
{
    try {
        torch::NoGradGuard noGrad;
        auto cu = std::make_shared<torch::jit::CompilationUnit>();
        torch::jit::Module root = mirror(net, cu);
        auto traced = torch::jit::tracer::trace(
            {example},
            [&net](torch::jit::Stack inputs) -> torch::jit::Stack {
                return {net.forward(inputs.at(0).toTensor())};
            },
            [](const torch::autograd::Variable &) { return std::string(); }, /*strict=*/true,
            /*force_outplace=*/false, &root, {"x"});
        std::shared_ptr<torch::jit::Graph> graph = traced.first->graph;
        // As Python's ScriptModule._create_method_from_trace.
        torch::jit::Function *forward
            = cu->create_function(c10::QualifiedName(*root.type()->name(), "forward"), graph);
        root.type()->addMethod(forward);
        std::vector<std::string> names;
        for (const QString &name : classes)
            names.push_back(name.toStdString());
        root.register_attribute("classes", c10::ListType::ofStrings(),
                                c10::IValue(c10::List<std::string>(names)));
        root.eval();
        return root;
    } catch (const c10::Error &e) {
        return Error{
            QStringLiteral("cannot trace the model: %1")
                .arg(QString::fromStdString(e.what_without_backtrace()).section(u'\n', 0, 0))};
    }
}

Result<QByteArray> torchScriptBytes(const torch::jit::Module &module, const ExtraFiles &extra)
{
    try {
        std::ostringstream out;
        torch::jit::ExtraFilesMap files(extra.begin(), extra.end());
        module.save(out, files);
        const std::string bytes = out.str();
        return QByteArray(bytes.data(), qsizetype(bytes.size()));
    } catch (const c10::Error &e) {
        return Error{
            QStringLiteral("cannot write the TorchScript archive: %1")
                .arg(QString::fromStdString(e.what_without_backtrace()).section(u'\n', 0, 0))};
    }
}

Result<torch::jit::Module> loadTorchScript(const QString &path, ExtraFiles *extra)
{
    try {
        torch::jit::ExtraFilesMap files;
        if (extra) {
            for (const auto &item : *extra)
                files.emplace(item.first, std::string());
        }
        torch::jit::Module module = torch::jit::load(path.toStdString(), torch::kCPU, files);
        if (extra) {
            for (auto &item : *extra)
                item.second = files[item.first];
        }
        module.eval();
        return module;
    } catch (const c10::Error &e) {
        return Error{
            QStringLiteral("cannot load “%1” with torch::jit::load: %2")
                .arg(path,
                     QString::fromStdString(e.what_without_backtrace()).section(u'\n', 0, 0))};
    }
}

} // namespace ifs::tm
