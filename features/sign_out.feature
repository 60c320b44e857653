@cap-sign-out
Feature: Sign-out
  Scenario: Signing out stops the monitor and ends the dialog
    Given alice is signed in
    When alice signs out
    Then the gateway holds 0 sessions and 0 PBX monitors
