#pragma once

#include "training/training.h"

#include <QDialog>

#include <optional>

class QDialogButtonBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QRadioButton;
class QSpinBox;

namespace ifs {

/// "Resume from Checkpoint": choose one of our training checkpoints, see what it holds
/// (summarizeTrainingCheckpoint, read without torch) and how to go on: exactly where it stopped
/// (optimizer, schedule, RNG, epoch counter; the curves continue) or from its weights only (a
/// new optimizer and schedule, epochs counted from 0), and until which epoch.
class ResumeDialog : public QDialog
{
    Q_OBJECT

public:
    explicit ResumeDialog(QWidget *parent = nullptr);

    /// Shows `path` (and reads its summary).
    void setCheckpoint(const QString &path);
    QString checkpoint() const;
    /// The summary of the checkpoint chosen; nullopt when none or unreadable.
    const std::optional<CheckpointSummary> &summary() const { return m_summary; }

    bool weightsOnly() const;
    void setWeightsOnly(bool weightsOnly);
    /// The total epochs of the resumed run.
    int epochs() const;
    void setEpochs(int epochs);
    /// Where the checkpoint dialog starts.
    void setStartFolder(const QString &folder) { m_startFolder = folder; }

    QPlainTextEdit *summaryText() const { return m_text; }
    QRadioButton *exactButton() const { return m_exact; }
    QRadioButton *weightsOnlyButton() const { return m_weights; }

private:
    void browse();
    void update();

    std::optional<CheckpointSummary> m_summary;
    QString m_startFolder;
    QLineEdit *m_path;
    QPlainTextEdit *m_text;
    QRadioButton *m_exact;
    QRadioButton *m_weights;
    QSpinBox *m_epochs;
    QLabel *m_note;
    QDialogButtonBox *m_buttons;
};

} // namespace ifs
