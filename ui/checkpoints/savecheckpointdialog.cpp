#include "checkpoints/savecheckpointdialog.h"

#include "base/settings.h"
#include "checkpoint/checkpointfiles.h"
#include "torch/runtime.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QProgressBar>
#include <QPushButton>
#include <QRadioButton>
#include <QVBoxLayout>

namespace ifs {

using namespace ckpt;

SaveCheckpointDialog::SaveCheckpointDialog(const Value &root, const QString &inputPath,
                                           const KeyPath &selection, Settings *settings,
                                           QWidget *parent)
    : QDialog(parent)
    , m_root(root)
    , m_inputPath(inputPath)
    , m_selection(selection)
    , m_settings(settings)
    , m_job(new CheckpointSaveJob(this))
{
    setWindowTitle(tr("Save Checkpoint As"));
    setObjectName(QStringLiteral("saveCheckpointDialog"));

    QFormLayout *form = buildForm();
    m_status = new QLabel(this);
    m_status->setObjectName(QStringLiteral("statusLabel"));
    m_status->setWordWrap(true);
    m_status->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_progress = new QProgressBar(this);
    m_progress->setRange(0, 4);
    m_progress->setTextVisible(false);
    m_progress->hide();

    m_buttons = new QDialogButtonBox(QDialogButtonBox::Save | QDialogButtonBox::Close, this);

    auto *layout = new QVBoxLayout(this);
    layout->addLayout(form);
    layout->addWidget(m_status);
    layout->addWidget(m_progress);
    layout->addStretch(1);
    layout->addWidget(m_buttons);
    setMinimumWidth(560);
    m_path->setText(defaultPath());

    m_confirm = [this](const QString &path) {
        const bool input = !m_inputPath.isEmpty()
            && QFileInfo(path).absoluteFilePath() == QFileInfo(m_inputPath).absoluteFilePath();
        const QString text = input
            ? tr("“%1” is the file this checkpoint was read from. Replace it?")
                  .arg(QFileInfo(path).fileName())
            : tr("“%1” exists. Replace it?").arg(QFileInfo(path).fileName());
        return QMessageBox::question(this, tr("Replace File"),
                                     text + u'\n'
                                         + tr("The current file is kept as “%1.bak”.")
                                               .arg(QFileInfo(path).fileName()))
            == QMessageBox::Yes;
    };

    connectSignals();
    updateForm();
}

QFormLayout *SaveCheckpointDialog::buildForm()
{
    m_whole = new QRadioButton(tr("The whole checkpoint"), this);
    m_selected = new QRadioButton(this);
    m_whole->setChecked(true);
    if (!m_selection.isEmpty()) {
        m_selected->setText(tr("Only %1").arg(keyPathText(m_selection)));
        m_selected->setChecked(true);
    } else {
        m_selected->setText(tr("Only a dict selected in the tree (none selected)"));
        m_selected->setEnabled(false);
    }
    auto *what = new QVBoxLayout;
    what->addWidget(m_whole);
    what->addWidget(m_selected);

    m_container = new QComboBox(this);
    m_container->addItem(tr("collections.OrderedDict (as state_dict() returns)"), true);
    m_container->addItem(tr("dict"), false);

    m_cast = new QComboBox(this);
    m_cast->setObjectName(QStringLiteral("castCombo"));
    m_cast->addItem(tr("Keep the types"), -1);
    for (DType dtype : {DType::Float32, DType::Float16, DType::BFloat16, DType::Float64})
        m_cast->addItem(tr("Cast floating point tensors to %1").arg(dtypeName(dtype)), int(dtype));

    m_device = new QComboBox(this);
    m_device->setObjectName(QStringLiteral("deviceCombo"));
    m_device->setEditable(true);
    m_device->addItem(tr("Keep the saved locations"), QString());
    m_device->addItem(QStringLiteral("cpu"), QStringLiteral("cpu"));
    for (const QString &device : cudaDevices())
        m_device->addItem(device, device);
    if (!cudaDevices().contains(QStringLiteral("cuda:0")))
        m_device->addItem(QStringLiteral("cuda:0"), QStringLiteral("cuda:0"));
    m_device->setToolTip(tr("The location tag torch.load uses without a map_location."));

    m_format = new QComboBox(this);
    m_format->setObjectName(QStringLiteral("formatCombo"));
    m_format->addItem(tr("PyTorch (.pt/.pth, torch.save zip)"), false);
    m_format->addItem(tr("safetensors (flat dict of tensors)"), true);

    m_path = new QLineEdit(this);
    m_path->setObjectName(QStringLiteral("pathEdit"));
    m_path->setClearButtonEnabled(true);
    auto *browse = new QPushButton(tr("Browse…"), this);
    auto *pathRow = new QHBoxLayout;
    pathRow->addWidget(m_path, 1);
    pathRow->addWidget(browse);

    m_verify = new QCheckBox(tr("Verify: read the file back and compare"), this);
    m_verify->setChecked(true);

    auto *form = new QFormLayout;
    form->addRow(tr("Write:"), what);
    form->addRow(tr("Container:"), m_container);
    form->addRow(tr("Types:"), m_cast);
    form->addRow(tr("Device tag:"), m_device);
    form->addRow(tr("Format:"), m_format);
    form->addRow(tr("File:"), pathRow);
    form->addRow(QString(), m_verify);

    connect(browse, &QPushButton::clicked, this, &SaveCheckpointDialog::browse);
    return form;
}

QString SaveCheckpointDialog::defaultPath() const
{
    if (!m_inputPath.isEmpty()) {
        const QFileInfo info(m_inputPath);
        return info.absoluteDir().filePath(
            info.completeBaseName() + QStringLiteral("_fixed.")
            + (info.suffix().isEmpty() ? QStringLiteral("pt") : info.suffix()));
    }
    return QDir(m_settings ? m_settings->lastCheckpointFolder() : QDir::homePath())
        .filePath(QStringLiteral("checkpoint.pt"));
}

void SaveCheckpointDialog::connectSignals()
{
    connect(m_path, &QLineEdit::textChanged, this, [this](const QString &text) {
        // The extension chooses the format.
        m_format->setCurrentIndex(isSafetensorsPath(text) ? 1 : 0);
        updateForm();
    });
    connect(m_format, &QComboBox::activated, this, [this](int index) {
        QString path = m_path->text();
        const QFileInfo info(path);
        const bool safetensors = index == 1;
        if (safetensors != isSafetensorsPath(path)) {
            path = info.dir().filePath(
                info.completeBaseName()
                + (safetensors ? QStringLiteral(".safetensors") : QStringLiteral(".pt")));
            m_path->setText(path);
        }
        updateForm();
    });
    connect(m_whole, &QRadioButton::toggled, this, &SaveCheckpointDialog::updateForm);
    connect(m_buttons, &QDialogButtonBox::accepted, this, &SaveCheckpointDialog::startSave);
    connect(m_buttons, &QDialogButtonBox::rejected, this, &SaveCheckpointDialog::reject);
    connect(m_job, &CheckpointSaveJob::progressChanged, this,
            [this](int step, int steps, const QString &text) {
                m_progress->setRange(0, steps);
                m_progress->setValue(step);
                m_status->setText(text);
            });
    connect(m_job, &CheckpointSaveJob::finished, this,
            [this](const QString &path, const QStringList &notes) {
                m_progress->hide();
                m_buttons->button(QDialogButtonBox::Save)->setEnabled(true);
                m_status->setText(tr("Saved %1.").arg(QDir::toNativeSeparators(path)) + u'\n'
                                  + notes.join(u'\n'));
                if (m_settings)
                    m_settings->setLastCheckpointFolder(QFileInfo(path).absolutePath());
                Q_EMIT saved(path, notes);
            });
    connect(m_job, &CheckpointSaveJob::failed, this, [this](const QString &message) {
        m_progress->hide();
        m_buttons->button(QDialogButtonBox::Save)->setEnabled(true);
        m_status->setText(
            QStringLiteral("<span style='color:#c0392b'>%1</span>").arg(message.toHtmlEscaped()));
        Q_EMIT saveFailed(message);
    });
    connect(m_job, &CheckpointSaveJob::cancelled, this, [this] {
        m_progress->hide();
        m_buttons->button(QDialogButtonBox::Save)->setEnabled(true);
        m_status->setText(tr("Cancelled."));
    });
}

SaveCheckpointDialog::~SaveCheckpointDialog() = default;

void SaveCheckpointDialog::setPath(const QString &path)
{
    m_path->setText(path);
}

QString SaveCheckpointDialog::path() const
{
    return m_path->text().trimmed();
}

void SaveCheckpointDialog::setOverwriteConfirmer(std::function<bool(const QString &)> confirm)
{
    m_confirm = std::move(confirm);
}

Value SaveCheckpointDialog::chosenValue() const
{
    if (m_selected->isChecked() && !m_selection.isEmpty()) {
        const Result<Value> value = ckpt::valueAt(m_root, m_selection);
        if (value)
            return value.value();
    }
    return m_root;
}

QList<Operation> SaveCheckpointDialog::chosenOperations() const
{
    QList<Operation> operations;
    if (const int cast = m_cast->currentData().toInt(); cast >= 0)
        operations.append(CastFloat{DType(cast), {}});
    // Items other than the first show their tag; a tag may also be typed.
    QString device = m_device->currentText().trimmed();
    if (device == m_device->itemText(0))
        device.clear();
    if (!device.isEmpty())
        operations.append(MapDevices{device, {}});
    return operations;
}

void SaveCheckpointDialog::updateForm()
{
    const Value value = chosenValue();
    m_container->setEnabled(value.isDict());
    if (value.isDict())
        m_container->setCurrentIndex(value.isOrderedDict() ? 0 : 1);
    const bool safetensors = m_format->currentData().toBool();
    m_device->setEnabled(!safetensors); // safetensors keeps no device
    QString problem;
    if (safetensors) {
        if (!value.isDict()) {
            problem = tr("safetensors holds a flat dict of tensors; this is a %1.")
                          .arg(value.typeName());
        } else {
            for (const Value::Entry &entry : value.entries()) {
                if (!entry.first.isString() || !entry.second.isTensor()) {
                    problem = tr("safetensors holds tensors only: “%1” is a %2. Choose the "
                                 "state dict in the tree, or save as .pt.")
                                  .arg(entry.first.toString(), entry.second.typeName());
                    break;
                }
            }
        }
    }
    if (!problem.isEmpty())
        m_status->setText(problem);
    else if (!m_job->isRunning())
        m_status->clear();
    m_buttons->button(QDialogButtonBox::Save)
        ->setEnabled(problem.isEmpty() && !path().isEmpty() && !m_job->isRunning());
}

void SaveCheckpointDialog::browse()
{
    const QString chosen = QFileDialog::getSaveFileName(
        this, tr("Save Checkpoint As"), path(),
        tr("PyTorch checkpoints (%1);;safetensors (*.safetensors)")
            .arg(checkpointNameFilter(CheckpointFiles::TorchSave)),
        nullptr, QFileDialog::DontConfirmOverwrite); // we ask, and keep a backup
    if (!chosen.isEmpty())
        setPath(chosen);
}

void SaveCheckpointDialog::startSave()
{
    const QString target = path();
    if (target.isEmpty() || m_job->isRunning())
        return;
    SaveRequest request;
    request.value = chosenValue();
    request.operations = chosenOperations();
    request.orderedDict = m_container->currentData().toBool();
    request.path = target;
    request.safetensors = m_format->currentData().toBool();
    if (request.safetensors) {
        // safetensors has no device tags.
        request.operations.erase(std::remove_if(request.operations.begin(),
                                                request.operations.end(),
                                                [](const Operation &op) {
                                                    return std::holds_alternative<MapDevices>(op);
                                                }),
                                 request.operations.end());
    }
    request.verify = m_verify->isChecked();
    if (QFileInfo::exists(target)) {
        if (!m_confirm || !m_confirm(target))
            return;
        request.backup = true;
    }
    m_buttons->button(QDialogButtonBox::Save)->setEnabled(false);
    m_progress->show();
    m_job->start(request);
}

void SaveCheckpointDialog::reject()
{
    // The write is atomic: stopping early leaves no partial file behind.
    m_job->requestCancel();
    QDialog::reject();
}

} // namespace ifs
