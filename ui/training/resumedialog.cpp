#include "training/resumedialog.h"

#include "checkpoint/checkpointfiles.h"

#include <QDialogButtonBox>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QFontDatabase>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QRadioButton>
#include <QSpinBox>
#include <QVBoxLayout>

namespace ifs {

ResumeDialog::ResumeDialog(QWidget *parent)
    : QDialog(parent)
{
    setWindowTitle(tr("Resume from Checkpoint"));
    setObjectName(QStringLiteral("resumeDialog"));
    m_path = new QLineEdit(this);
    m_path->setObjectName(QStringLiteral("resumePath"));
    m_path->setPlaceholderText(tr("last.pth or best.pth of an earlier run"));
    auto *browse = new QPushButton(tr("Browse…"), this);
    connect(browse, &QPushButton::clicked, this, &ResumeDialog::browse);
    connect(m_path, &QLineEdit::editingFinished, this, [this] { setCheckpoint(m_path->text()); });
    auto *pathRow = new QHBoxLayout;
    pathRow->addWidget(m_path, 1);
    pathRow->addWidget(browse);

    m_text = new QPlainTextEdit(this);
    m_text->setObjectName(QStringLiteral("resumeSummary"));
    m_text->setReadOnly(true);
    m_text->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    m_text->setMinimumSize(520, 200);

    m_exact = new QRadioButton(tr("Resume exactly where it stopped"), this);
    m_exact->setObjectName(QStringLiteral("resumeExact"));
    m_exact->setToolTip(tr("Model, optimizer state, schedule, random state and the epoch "
                           "counter: the run goes on as if never stopped, and its curves "
                           "continue"));
    m_weights = new QRadioButton(tr("Start a new run from its weights only"), this);
    m_weights->setObjectName(QStringLiteral("resumeWeightsOnly"));
    m_weights->setToolTip(tr("A fresh optimizer and schedule with the settings of the form, "
                             "epochs counted from 0 (fine-tuning)"));
    m_exact->setChecked(true);
    connect(m_exact, &QRadioButton::toggled, this, &ResumeDialog::update);

    m_epochs = new QSpinBox(this);
    m_epochs->setObjectName(QStringLiteral("resumeEpochs"));
    m_epochs->setRange(1, 100000);
    m_epochs->setValue(5);
    connect(m_epochs, &QSpinBox::valueChanged, this, &ResumeDialog::update);

    m_note = new QLabel(this);
    m_note->setWordWrap(true);

    m_buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
    m_buttons->button(QDialogButtonBox::Ok)->setText(tr("Resume"));
    connect(m_buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(m_buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);

    auto *form = new QFormLayout;
    form->addRow(tr("Checkpoint:"), pathRow);
    auto *layout = new QVBoxLayout(this);
    layout->addLayout(form);
    layout->addWidget(m_text, 1);
    layout->addWidget(m_exact);
    layout->addWidget(m_weights);
    auto *epochForm = new QFormLayout;
    epochForm->addRow(tr("Train until epoch:"), m_epochs);
    layout->addLayout(epochForm);
    layout->addWidget(m_note);
    layout->addWidget(m_buttons);
    update();
}

void ResumeDialog::browse()
{
    const QString start
        = m_path->text().isEmpty() ? m_startFolder : QFileInfo(m_path->text()).absolutePath();
    const QString path = QFileDialog::getOpenFileName(
        this, tr("Resume from Checkpoint"), start,
        tr("Training checkpoints (%1);;All files (*)")
            .arg(ckpt::checkpointNameFilter(ckpt::CheckpointFiles::Training)));
    if (!path.isEmpty())
        setCheckpoint(path);
}

void ResumeDialog::setCheckpoint(const QString &path)
{
    m_path->setText(QDir::toNativeSeparators(path));
    m_summary.reset();
    if (path.isEmpty()) {
        m_text->clear();
        update();
        return;
    }
    const Result<CheckpointSummary> summary = summarizeTrainingCheckpoint(path);
    if (!summary) {
        m_text->setPlainText(summary.errorMessage());
        update();
        return;
    }
    m_summary = summary.value();
    m_text->setPlainText(m_summary->lines().join(u'\n'));
    // Go on to the epochs the run was set up for, or at least one more.
    const int planned = m_summary->config.value(QStringLiteral("epochs")).toInt();
    m_epochs->setValue(std::max(planned, m_summary->epoch + 1));
    m_exact->setEnabled(m_summary->hasOptimizerState);
    if (!m_summary->hasOptimizerState)
        m_weights->setChecked(true);
    update();
}

QString ResumeDialog::checkpoint() const
{
    return QDir::fromNativeSeparators(m_path->text().trimmed());
}

bool ResumeDialog::weightsOnly() const
{
    return m_weights->isChecked();
}

void ResumeDialog::setWeightsOnly(bool weightsOnly)
{
    (weightsOnly ? m_weights : m_exact)->setChecked(true);
}

int ResumeDialog::epochs() const
{
    return m_epochs->value();
}

void ResumeDialog::setEpochs(int epochs)
{
    m_epochs->setValue(epochs);
}

void ResumeDialog::update()
{
    QString note;
    bool ok = m_summary.has_value();
    if (!m_summary) {
        note = m_path->text().isEmpty() ? tr("Choose a last.pth or best.pth written by a run.")
                                        : QString();
    } else if (!m_summary->hasOptimizerState) {
        note = tr("This checkpoint has no optimizer state: only its weights can be used.");
    } else if (!weightsOnly() && m_epochs->value() <= m_summary->epoch && !m_summary->midEpoch) {
        note = tr("It has already trained %n epoch(s): raise “Train until epoch” to train more.",
                  nullptr, m_summary->epoch);
        ok = false;
    } else if (!weightsOnly() && m_summary->midEpoch) {
        note = tr("Saved inside an epoch: the run continues with the next batch of that epoch.");
    }
    m_note->setText(note);
    m_note->setVisible(!note.isEmpty());
    m_buttons->button(QDialogButtonBox::Ok)->setEnabled(ok);
}

} // namespace ifs
